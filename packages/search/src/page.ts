/**
 * The single page of `pnpm serve`: pick or drop an image (or click a catalogue item) and see
 * its neighbours with scores and labels; filter by coarse label. Plain DOM, no build step;
 * every label is inserted as text, never as HTML.
 */
export const SEARCH_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MaskCon search</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:0;color:#222}
header{padding:12px 20px;background:#f4f4f6;border-bottom:1px solid #ddd;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
h1{font-size:18px;margin:0}
#drop{border:2px dashed #99a;border-radius:8px;padding:10px 16px;cursor:pointer}
#drop.over{background:#e8ecff}
main{padding:12px 20px}
#error{color:#a00;font-weight:600;min-height:1.2em}
.grid{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;width:150px;text-align:center;cursor:pointer}
figure img{width:140px;height:140px;object-fit:contain;background:#fafafa;border:1px solid #ddd;image-rendering:pixelated}
figcaption{font-size:12px;line-height:1.3}
#query img{width:140px;height:140px;object-fit:contain;border:2px solid #447}
h2{font-size:15px;margin:18px 0 8px}
</style></head>
<body>
<header>
  <h1>MaskCon search</h1>
  <label id="drop">Drop an image here or <input id="file" type="file" accept="image/jpeg,image/png,image/webp"></label>
  <label>k <input id="k" type="number" min="1" max="200" value="10" style="width:4em"></label>
  <label>coarse label <select id="coarse"><option value="">all</option></select></label>
  <span id="info"></span>
</header>
<main>
  <div id="error" role="alert"></div>
  <div id="status"></div>
  <div id="query"></div>
  <h2>Neighbours</h2>
  <div id="results" class="grid"></div>
  <h2>Catalogue</h2>
  <div id="gallery" class="grid"></div>
</main>
<script>
const $ = (id) => document.getElementById(id);
let lastQuery = null;
function tile(cls, id, lines) {
  const f = document.createElement('figure');
  f.className = cls;
  f.dataset.id = String(id);
  const img = document.createElement('img');
  img.src = '/api/image/' + id;
  img.alt = 'item ' + id;
  const cap = document.createElement('figcaption');
  for (const l of lines) { const d = document.createElement('div'); d.textContent = l; cap.appendChild(d); }
  f.append(img, cap);
  f.addEventListener('click', () => searchId(id));
  return f;
}
function params() {
  const q = new URLSearchParams({ k: $('k').value || '10' });
  if ($('coarse').value) q.set('coarse', $('coarse').value);
  return q;
}
function show(res) {
  $('error').textContent = '';
  const grid = $('results');
  grid.replaceChildren(...res.hits.map((h, i) => {
    const t = tile('tile', h.id, ['#' + h.rank + ' · ' + h.score.toFixed(3), [h.coarse, h.fine].filter(Boolean).join(' / ')]);
    t.dataset.rank = String(h.rank);
    return t;
  }));
  $('status').textContent = res.hits.length + ' neighbours';
}
async function run(p) {
  $('status').textContent = 'searching…';
  try {
    const r = await p;
    const body = await r.json();
    if (!r.ok) { $('error').textContent = body.error || ('Error ' + r.status); $('status').textContent = ''; return; }
    show(body);
  } catch (e) {
    $('error').textContent = 'The server did not answer (' + e.message + ').';
    $('status').textContent = '';
  }
}
function searchId(id) {
  lastQuery = { id };
  const q = params(); q.set('id', String(id));
  $('query').replaceChildren(tile('query-item', id, ['query: item ' + id]));
  return run(fetch('/api/search?' + q));
}
function searchFile(file) {
  lastQuery = { file };
  const url = URL.createObjectURL(file);
  const img = document.createElement('img'); img.src = url; img.alt = 'query';
  $('query').replaceChildren(img);
  const form = new FormData(); form.append('image', file);
  return run(fetch('/api/search?' + params(), { method: 'POST', body: form }));
}
function again() { if (lastQuery?.id) searchId(lastQuery.id); else if (lastQuery?.file) searchFile(lastQuery.file); }
$('file').addEventListener('change', (e) => { const f = e.target.files[0]; if (f) searchFile(f); e.target.value = ''; });
$('coarse').addEventListener('change', again);
$('k').addEventListener('change', again);
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); const f = e.dataTransfer.files[0]; if (f) searchFile(f); });
(async () => {
  const info = await (await fetch('/api/info')).json();
  $('info').textContent = info.items + ' items · ' + info.model.arch + (info.model.runId ? ' (run ' + info.model.runId + ')' : '');
  $('k').value = String(info.defaultK);
  for (const c of info.coarse) { const o = document.createElement('option'); o.value = c; o.textContent = c; $('coarse').appendChild(o); }
  const items = await (await fetch('/api/items?limit=60')).json();
  $('gallery').replaceChildren(...items.map((it) => tile('item', it.id, ['id ' + it.id, [it.coarse, it.fine].filter(Boolean).join(' / ')])));
  document.body.dataset.ready = '1';
})();
</script>
</body></html>`;
