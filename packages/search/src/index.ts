export {
  EmbeddingStore,
  STORE_FORMAT_VERSION,
  type ModelIdentity,
  type StoreItem,
  type NewItem,
  type ItemKind,
} from './store.js';
export {
  csvCatalogue,
  imagesCatalogue,
  indexCatalogue,
  type Catalogue,
  type CatalogueItem,
} from './catalogue.js';
export {
  embedCatalogue,
  checkStoreModel,
  l2NormalizeInPlace,
  type EmbedOptions,
  type EmbedResult,
} from './embed.js';
export {
  ENGINE_NAMES,
  loadOnnxRuntime,
  modelHash,
  modelIdentity,
  openEngine,
  resolveModel,
  type EmbeddingEngine,
  type EngineChoice,
  type EngineOptions,
  type ResolvedModel,
} from './model.js';
export { embedImage, openStoreEngine } from './query.js';
export {
  loadGallery,
  searchGallery,
  type Gallery,
  type SearchHit,
  type SearchQuery,
} from './search.js';
export {
  decodeForModel,
  encodePng,
  ImageDecodeError,
  DEFAULT_MAX_PIXELS,
  IMAGE_EXTENSIONS,
} from './images.js';
export { ItemImages } from './item-image.js';
export { searchApp, startServer, DEFAULT_MAX_UPLOAD_BYTES, type ServeOptions } from './serve.js';
export { AnnIndex, DEFAULT_ANN_PARAMS, loadUsearch, type AnnParams } from './ann.js';
