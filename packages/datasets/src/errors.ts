/**
 * An error whose message is a complete sentence for the user (what was wrong, with which
 * file or value, what to do). The CLI prints only the message of these, never a stack.
 */
export class DatasetError extends Error {
  override readonly name = 'DatasetError';
}
