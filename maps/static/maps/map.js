// つなぐ 地図: the supervisors' map page. Vector tiles and JSON from /api/v1/maps (session + CSRF),
// drawn with MapLibre GL served from our own static files. No base map: a plain background and our
// own layers, so the page works on a closed network. `window.tsunaguMap` is the map (browser tests).

const config = JSON.parse(document.getElementById("map-config").textContent);
const maplibregl = await import(config.maplibre);

const LAYER_LABELS = {
  neighborhoods: "自治会 (訪問完了率)",
  hexagons: "世帯数 (六角形の集計)",
  households: "世帯 (孤立の兆し)",
  resources: "社会資源・居場所",
  concerns: "気づき (対応中)",
  cases: "継続的支援 (支援中)",
};
const INDICATOR_LABELS = {
  single_elderly: "独居高齢", elderly_only: "高齢者のみ", "8050": "8050", hikikomori: "ひきこもり",
  hoarding: "ゴミ屋敷", multi_pet: "多頭飼育", no_contact: "長期間面談なし", refused: "訪問拒否",
  open_concern: "対応中の気づき", open_case: "継続的支援中",
};
const STATE_LABELS = { complete: "完了", in_progress: "実施中", not_started: "未着手" };
const NUMBER_LABELS = [
  ["in_scope", "対象世帯"], ["met", "面談"], ["leaflet_left", "チラシ投函"], ["refused", "拒否"],
  ["moved_or_vacant", "転居・空き家"], ["absent_pending", "不在 (再訪予定)"], ["not_visited", "未訪問"],
];
// Source zoom ranges: the server's ranges (GET /maps/layers); above maxzoom MapLibre over-zooms.
const SOURCE_MAX_ZOOM = { neighborhoods: 15, hexagons: 15, households: 18, resources: 16, concerns: 16, cases: 16 };
const COVERAGE_COLOR = [
  "case", ["has", "coverage_pct"],
  ["interpolate", ["linear"], ["get", "coverage_pct"], 0, "#d73027", 50, "#fee08b", 100, "#1a9850"],
  "#d9d9d9",
];
const LEGEND = [["#d73027", "0%"], ["#fc8d59", "25%"], ["#fee08b", "50%"], ["#91cf60", "75%"], ["#1a9850", "100%"],
  ["#d9d9d9", "調査の対象外"]];

const $ = (id) => document.getElementById(id);
const esc = (value) => String(value ?? "").replace(/[&<>"']/g, (c) => (
  { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

function csrfToken() {
  const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function api(path) {
  const response = await fetch(config.api + path, {
    credentials: "same-origin", headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error((body.error && body.error.message) || response.statusText);
  }
  return response.json();
}

const cfg = await api("/layers");
const layers = Object.fromEntries(cfg.layers.filter((l) => l.allowed).map((l) => [l.name, l]));
let campaignId = cfg.current_campaign_id;
let selectedId = null;

function tileUrl(name) {
  const params = new URLSearchParams();
  if ((name === "neighborhoods" || name === "households") && campaignId) params.set("campaign", campaignId);
  const query = params.toString();
  // Tile templates keep their {z}/{x}/{y}: no URL() here, it would escape the braces.
  return window.location.origin + layers[name].tiles + (query ? `?${query}` : "");
}

function vectorSource(name) {
  return {
    type: "vector", tiles: [tileUrl(name)], minzoom: layers[name].min_zoom,
    maxzoom: Math.min(SOURCE_MAX_ZOOM[name], layers[name].max_zoom),
  };
}

const bounds = cfg.bounds ? [[cfg.bounds[0], cfg.bounds[1]], [cfg.bounds[2], cfg.bounds[3]]] : null;
const map = new maplibregl.Map({
  container: "map",
  style: { version: 8, sources: {}, layers: [{ id: "background", type: "background", paint: { "background-color": "#eef1f4" } }] },
  ...(bounds ? { bounds, fitBoundsOptions: { padding: 24 } } : { center: [139.69, 35.69], zoom: 12 }),
  minZoom: 8, maxZoom: 19, attributionControl: false,
});
window.tsunaguMap = map;
map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");

// Map layer ids per toggle.
const STYLE_LAYERS = {
  neighborhoods: ["neighborhoods-fill", "neighborhoods-line"],
  hexagons: ["hexagons-fill"],
  households: ["households-points"],
  resources: ["resources-points"],
  concerns: ["concerns-points"],
  cases: ["cases-points"],
};
const DEFAULT_ON = {
  neighborhoods: true, hexagons: !layers.households, households: true, resources: true, concerns: false, cases: false,
};

function addLayers() {
  const visible = (name) => (DEFAULT_ON[name] ? "visible" : "none");
  if (layers.neighborhoods) {
    map.addSource("neighborhoods", vectorSource("neighborhoods"));
    map.addLayer({
      id: "neighborhoods-fill", type: "fill", source: "neighborhoods", "source-layer": "neighborhoods",
      layout: { visibility: visible("neighborhoods") },
      paint: {
        "fill-color": COVERAGE_COLOR,
        "fill-opacity": ["case", ["boolean", ["feature-state", "selected"], false], 0.85, 0.55],
      },
    });
    map.addLayer({
      id: "neighborhoods-line", type: "line", source: "neighborhoods", "source-layer": "neighborhoods",
      layout: { visibility: visible("neighborhoods") },
      paint: {
        "line-color": ["case", ["boolean", ["feature-state", "selected"], false], "#102a43", "#627d98"],
        "line-width": ["case", ["boolean", ["feature-state", "selected"], false], 3, 0.8],
      },
    });
  }
  if (layers.hexagons) {
    map.addSource("hexagons", vectorSource("hexagons"));
    map.addLayer({
      id: "hexagons-fill", type: "fill", source: "hexagons", "source-layer": "hexagons",
      layout: { visibility: visible("hexagons") },
      paint: {
        "fill-color": ["interpolate", ["linear"], ["get", "households"], 5, "#deebf7", 40, "#9ecae1", 150, "#3182bd"],
        "fill-opacity": 0.6, "fill-outline-color": "#ffffff",
      },
    });
  }
  const points = (name, paint) => {
    if (!layers[name]) return;
    map.addSource(name, vectorSource(name));
    map.addLayer({
      id: `${name}-points`, type: "circle", source: name, "source-layer": name,
      layout: { visibility: visible(name) }, paint,
    });
  };
  points("households", {
    "circle-radius": ["interpolate", ["linear"], ["zoom"], 14, 3, 18, 7],
    "circle-color": ["step", ["get", "indicator_count"], "#9aa5b1", 1, "#f0b429", 2, "#de3a11"],
    "circle-stroke-color": "#ffffff", "circle-stroke-width": 1,
  });
  points("resources", { "circle-radius": 6, "circle-color": "#2f6fb0", "circle-stroke-color": "#fff", "circle-stroke-width": 2 });
  points("concerns", { "circle-radius": 6, "circle-color": "#8e44ad", "circle-stroke-color": "#fff", "circle-stroke-width": 1 });
  points("cases", {
    "circle-radius": 6, "circle-color": ["case", ["get", "overdue"], "#c0392b", "#111111"],
    "circle-stroke-color": "#fff", "circle-stroke-width": 2,
  });
}

function renderToggles() {
  const box = $("toggles");
  for (const name of Object.keys(STYLE_LAYERS)) {
    if (!layers[name]) continue;
    const label = document.createElement("label");
    label.className = "toggle";
    const input = document.createElement("input");
    input.type = "checkbox";
    input.id = `toggle-${name}`;
    input.checked = DEFAULT_ON[name];
    input.addEventListener("change", () => {
      for (const id of STYLE_LAYERS[name]) map.setLayoutProperty(id, "visibility", input.checked ? "visible" : "none");
    });
    const zoom = layers[name].min_zoom > 10 ? ` <small>(ズーム${layers[name].min_zoom}以上)</small>` : "";
    label.append(input);
    label.insertAdjacentHTML("beforeend", ` ${esc(LAYER_LABELS[name])}${zoom}`);
    box.append(label);
  }
  if (layers.households) {
    const select = $("indicator");
    for (const key of cfg.indicators) {
      if (cfg.withheld_indicators.includes(key)) continue;
      select.insertAdjacentHTML("beforeend", `<option value="${esc(key)}">${esc(INDICATOR_LABELS[key] || key)}</option>`);
    }
    $("indicator-filter").hidden = false;
    select.addEventListener("change", () => {
      map.setFilter("households-points", select.value ? ["==", ["get", select.value], true] : null);
    });
  }
}

function renderLegend() {
  $("legend").innerHTML = LEGEND.map(([color, text]) => (
    `<span class="swatch" style="background:${color}"></span><span>${esc(text)}</span>`)).join("")
    + (layers.hexagons ? `<span></span><span class="muted">六角形: ${cfg.hexagon_min_count}世帯未満のセルは表示しません</span>` : "")
    + (layers.households ? '<span class="swatch" style="background:#de3a11"></span><span>兆しが2つ以上の世帯</span>' : "");
}

function renderCampaigns() {
  const select = $("campaign");
  if (!cfg.campaigns.length) select.insertAdjacentHTML("beforeend", "<option value=''>調査がありません</option>");
  for (const c of cfg.campaigns) {
    const state = { running: "実施中", draft: "準備中", closed: "終了" }[c.status] || c.status;
    select.insertAdjacentHTML("beforeend",
      `<option value="${c.id}" ${c.id === campaignId ? "selected" : ""}>${esc(c.fiscal_year)}年度 ${esc(c.name)} (${esc(state)})</option>`);
  }
  select.addEventListener("change", () => {
    campaignId = select.value ? Number(select.value) : null;
    reloadTiles(["neighborhoods", "households"]);
    clearSelection();
    loadTotals();
  });
}

function reloadTiles(names) {
  for (const name of names) {
    const source = map.getSource(name);
    if (source) source.setTiles([tileUrl(name)]);
  }
}

function numbersTable(n) {
  const rows = NUMBER_LABELS.map(([key, label]) => `<tr><td>${label}</td><td>${esc(n[key] ?? 0)}</td></tr>`).join("");
  return `<table class="numbers">${rows}<tr><td>訪問完了率</td><td><strong>${esc(n.coverage_pct ?? 0)}%</strong></td></tr></table>`;
}

const stateBadge = (state) => (state ? `<span class="state state-${esc(state)}">${esc(STATE_LABELS[state] || state)}</span>` : "");

let totalsPolls = 0;
async function loadTotals() {
  if (!campaignId) { $("totals").innerHTML = ""; return; }
  const data = await api(`/coverage?campaign=${campaignId}&limit=1`);
  const t = data.totals;
  $("totals").innerHTML = `<h2>全体 ${stateBadge(t.state)}</h2>${numbersTable(t)}`
    + `<p class="muted">自治会: 完了 ${t.neighborhoods.complete} / 実施中 ${t.neighborhoods.in_progress}`
    + ` / 未着手 ${t.neighborhoods.not_started}</p>`;
  const snap = data.snapshot;
  const when = snap && snap.refreshed_at ? new Date(snap.refreshed_at).toLocaleTimeString("ja-JP") : "—";
  $("snapshot").textContent = `集計時刻 ${when}${snap && snap.stale ? " (更新中…)" : ""}`;
  if (snap && snap.stale && totalsPolls < 10) {
    totalsPolls += 1;
    setTimeout(async () => { await loadTotals(); reloadTiles(["neighborhoods"]); }, 3000);
  } else {
    totalsPolls = 0;
  }
}

function clearSelection() {
  if (selectedId !== null && map.getSource("neighborhoods")) {
    map.setFeatureState({ source: "neighborhoods", sourceLayer: "neighborhoods", id: selectedId }, { selected: false });
  }
  selectedId = null;
  $("selected").hidden = true;
}

function sparkline(items) {
  if (!items.length) return "";
  const w = 280, h = 56;
  const step = items.length > 1 ? w / (items.length - 1) : 0;
  const pts = items.map((it, i) => `${(i * step).toFixed(1)},${(h - (it.coverage_pct / 100) * h).toFixed(1)}`).join(" ");
  return `<svg class="spark" viewBox="0 0 ${w} ${h}" preserveAspectRatio="none" role="img" aria-label="週ごとの累積完了率">`
    + `<polyline fill="none" stroke="#2f6fb0" stroke-width="2" points="${pts}"/></svg>`
    + `<p class="muted">${esc(items[0].week)} 〜 ${esc(items[items.length - 1].week)} の累積完了率</p>`;
}

async function selectNeighborhood(feature, lngLat) {
  clearSelection();
  const p = feature.properties;
  selectedId = feature.id;
  map.setFeatureState({ source: "neighborhoods", sourceLayer: "neighborhoods", id: feature.id }, { selected: true });
  const body = p.targeted
    ? `${numbersTable(p)}`
    : '<p class="muted">この調査の対象ではありません。</p>';
  const html = `<div class="neighborhood-numbers" data-neighborhood="${esc(p.id)}"><strong>${esc(p.name)}</strong> `
    + `<small>${esc(p.code)}</small> ${stateBadge(p.state)}${body}</div>`;
  new maplibregl.Popup({ closeButton: true, maxWidth: "280px" }).setLngLat(lngLat).setHTML(html).addTo(map);
  const panel = $("selected");
  panel.innerHTML = `<h2>${esc(p.name)} ${stateBadge(p.state)}</h2>${p.targeted ? numbersTable(p) : ""}`;
  panel.hidden = false;
  if (p.targeted && campaignId) {
    const weekly = await api(`/coverage/weekly?campaign=${campaignId}&neighborhood=${p.id}`);
    if (selectedId === feature.id) panel.insertAdjacentHTML("beforeend", sparkline(weekly.items));
  }
}

function popupFor(layerId, props) {
  if (layerId === "households-points") {
    const flags = cfg.indicators.filter((k) => props[k] === true).map((k) => INDICATOR_LABELS[k] || k);
    return `<strong>世帯</strong><br>状態: ${esc(props.status)}${props.campaign_state ? ` / 調査: ${esc(props.campaign_state)}` : ""}`
      + `<br>兆し: ${flags.length ? esc(flags.join("・")) : "なし"}`;
  }
  if (layerId === "resources-points") return `<strong>${esc(props.name)}</strong><br>${esc(props.type)}`;
  if (layerId === "concerns-points") return `<strong>気づき</strong><br>${esc(props.status)} / 緊急度 ${esc(props.urgency)}`;
  if (layerId === "cases-points") return `<strong>継続的支援</strong><br>${esc(props.stage)}<br>次回期限 ${esc(props.next_contact_due)}${props.overdue ? " (期限切れ)" : ""}`;
  return "";
}

async function loadOverdue() {
  if (!cfg.overdue) return;
  const data = await api("/overdue?limit=100");
  $("overdue-section").hidden = false;
  $("overdue-count").textContent = `${data.count}件`;
  const list = $("overdue");
  list.innerHTML = "";
  for (const item of data.items) {
    const li = document.createElement("li");
    li.innerHTML = `${item.kind === "case" ? "継続的支援" : "見守り"}: ${esc(item.label)}<br>`
      + `<small>${esc(item.neighborhood_name)} ・ 期限 ${esc(item.due)} `
      + `<span class="late">${esc(item.days_overdue)}日超過</span></small>`;
    if (item.location) li.addEventListener("click", () => map.flyTo({ center: item.location.coordinates, zoom: 16 }));
    list.append(li);
  }
}

renderCampaigns();
renderToggles();
renderLegend();

map.on("load", () => {
  addLayers();
  const clickable = Object.values(STYLE_LAYERS).flat().filter((id) => id.endsWith("-points") && map.getLayer(id));
  map.on("click", (event) => {
    const hits = map.queryRenderedFeatures(event.point, { layers: clickable });
    if (hits.length) {
      new maplibregl.Popup().setLngLat(event.lngLat).setHTML(popupFor(hits[0].layer.id, hits[0].properties)).addTo(map);
      return;
    }
    if (!map.getLayer("neighborhoods-fill")) return;
    const hoods = map.queryRenderedFeatures(event.point, { layers: ["neighborhoods-fill"] });
    if (hoods.length) selectNeighborhood(hoods[0], event.lngLat);
  });
  for (const id of [...clickable, "neighborhoods-fill"]) {
    if (!map.getLayer(id)) continue;
    map.on("mouseenter", id, () => { map.getCanvas().style.cursor = "pointer"; });
    map.on("mouseleave", id, () => { map.getCanvas().style.cursor = ""; });
  }
  map.once("idle", () => { document.body.dataset.mapReady = "1"; });
});

loadTotals().catch((err) => { $("snapshot").textContent = `集計を読めません: ${err.message}`; });
loadOverdue().catch((err) => { $("overdue-count").textContent = `(${err.message})`; });
