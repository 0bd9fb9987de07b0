// つなぐ 年度報告: the reports page. The 年度 report from /api/v1/reports/fiscal-years/{year} (session +
// CSRF), drawn as cards, Chart.js charts and tables; exports through /api/v1/exports (a job, polled
// until its file is ready). Chart.js and the Noto Sans JP web font come from our own static files.
// `window.tsunaguReports` holds the report and the charts (browser tests); body[data-state] says
// "ready" once everything is drawn, or "error".

const config = JSON.parse(document.getElementById("reports-config").textContent);
await import(config.chart); // a UMD build: it sets globalThis.Chart
const { Chart } = globalThis;

const $ = (id) => document.getElementById(id);
const esc = (value) => String(value ?? "").replace(/[&<>"']/g, (c) => (
  { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const SUPPRESSED = "—";
const FONT = `"${config.font_family}", sans-serif`;

// Labels: the same words as the exports (reports.fiscal.fiscal_year_tables).
const VISIT_LABELS = {
  households_in_scope: "対象世帯", households_visited: "訪問世帯 (実世帯数)", visits: "延べ訪問件数",
  met: "面談", absent_final: "全回不在", leaflet_left: "チラシ投函", refused: "拒否", moved_or_vacant: "転居・空き家",
};
const CARDS = [
  { id: "visits", title: "世帯訪問調査", rows: Object.entries(VISIT_LABELS).map(([key, label]) => [`visits.total.${key}`, label]) },
  { id: "concerns", title: "気づき", rows: [
    ["concerns.total.raised", "受付"], ["concerns.total.triaged", "確認"], ["concerns.total.referred", "つなぎ"],
    ["concerns.total.case_opened", "継続支援へ"]] },
  { id: "outreach", title: "継続的支援", rows: [
    ["outreach.people", "実人数"], ["outreach.contacts", "延べ件数"], ["outreach.cases.opened", "開始"],
    ["outreach.cases.closed", "終結"], ["outreach.cases.continuing", "年度末継続"], ["outreach.consent_obtained", "同意取得"]] },
  { id: "meetings", title: "会議", rows: [
    ["meetings.sasaeai", "支え愛連絡会"], ["meetings.support", "支援会議"], ["meetings.support_cases", "支援会議 検討事例"],
    ["meetings.multi_agency", "重層的支援会議"], ["meetings.multi_agency_cases", "重層的支援会議 検討事例"]] },
];
const LEAD_KEYS = new Set(["visits.total.visits", "concerns.total.raised", "outreach.people", "meetings.sasaeai"]);

function csrfToken() {
  const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function api(url, options = {}) {
  const response = await fetch(url, {
    credentials: "same-origin", ...options,
    headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error((body.error && body.error.message) || `${response.status} ${response.statusText}`);
  }
  return response.json();
}

const pick = (obj, path) => path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
const fmt = (n) => (n === null || n === undefined ? SUPPRESSED : Number(n).toLocaleString("ja-JP"));
const numCell = (n) => (n === null
  ? `<td class="n suppressed" title="小さい数のため伏せています">${SUPPRESSED}</td>`
  : `<td class="n">${esc(fmt(n))}</td>`);
const monthLabel = (month) => `${Number(month.slice(5, 7))}月`;
const isPublic = () => config.public_only || Boolean($("public") && $("public").checked);

function showError(message) {
  $("error").textContent = `年度報告を読み込めませんでした: ${message}`;
  $("error").hidden = false;
  document.body.dataset.state = "error";
}

// --- the numbers -----------------------------------------------------------------------------------

function renderHeader(report) {
  $("label").textContent = report.label;
  $("period").textContent = `${report.start} 〜 ${report.end} (${report.fiscal_year}年4月〜${report.fiscal_year + 1}年3月)`;
  document.title = `つなぐ 年度報告 ${report.label} — ${$("municipality").textContent}`;
  const note = $("suppression-note");
  if (report.public && report.suppressed_below) {
    const below = report.suppressed_below;
    note.textContent = `公表用の集計です。個人が特定されないよう、${below}未満 (1〜${below - 1}) の数は「${SUPPRESSED}」で伏せています。`
      + "合計から逆算できないよう、ほかの数も伏せることがあります。";
    note.hidden = false;
  } else {
    note.hidden = true;
  }
}

function renderCards(report) {
  $("cards").innerHTML = CARDS.map((card) => `
    <section class="card" id="card-${card.id}">
      <h2>${esc(card.title)}</h2>
      <dl>${card.rows.map(([key, label]) => {
        const value = pick(report, key);
        const cls = [LEAD_KEYS.has(key) ? "lead" : "", value === null ? "suppressed" : ""].join(" ").trim();
        return `<dt>${esc(label)}</dt><dd data-key="${esc(key)}"${cls ? ` class="${cls}"` : ""}>${esc(fmt(value))}</dd>`;
      }).join("")}</dl>
    </section>`).join("");
}

function table(id, title, headers, rows, { wide = false, total = null } = {}) {
  const head = headers.map((h, i) => `<th${i ? ' class="n"' : ""}>${esc(h)}</th>`).join("");
  const line = (cells, cls = "") => `<tr${cls ? ` class="${cls}"` : ""}><td>${esc(cells[0])}</td>${cells.slice(1).map(numCell).join("")}</tr>`;
  const body = rows.length ? rows.map((r) => line(r)).join("")
    : `<tr><td colspan="${headers.length}" class="muted">該当なし</td></tr>`;
  return `<section id="table-${id}"${wide ? ' class="wide"' : ""}><h2>${esc(title)}</h2>
    <table class="numbers"><thead><tr>${head}</tr></thead><tbody>${body}${total ? line(total, "total") : ""}</tbody></table></section>`;
}

function renderTables(report) {
  const { visits, concerns, outreach, meetings } = report;
  const keys = Object.keys(VISIT_LABELS);
  // 日常生活圏域: the visits, the concerns raised and the outreach of each area in one row.
  const key = (id) => (id === null ? "none" : String(id));
  const concernsBy = new Map(concerns.by_area.map((r) => [key(r.id), r]));
  const outreachBy = new Map(outreach.by_area.map((r) => [key(r.id), r]));
  const areas = [...visits.by_area];
  for (const r of [...concerns.by_area, ...outreach.by_area]) {
    if (!areas.some((a) => key(a.id) === key(r.id))) areas.push({ id: r.id, name: r.name });
  }
  const areaRows = areas.map((a) => [
    a.name, ...keys.map((k) => (k in a ? a[k] : 0)),
    (concernsBy.get(key(a.id)) || { raised: 0 }).raised,
    (outreachBy.get(key(a.id)) || { people: 0 }).people, (outreachBy.get(key(a.id)) || { contacts: 0 }).contacts,
  ]);
  const areaTotal = ["合計", ...keys.map((k) => visits.total[k]), concerns.total.raised, outreach.people, outreach.contacts];
  const counted = (rows) => rows.map((r) => [r.label, r.count]);
  const coverage = [...visits.coverage].sort((a, b) => a.code.localeCompare(b.code));
  $("tables").innerHTML = [
    table("areas", "日常生活圏域別", ["日常生活圏域", ...Object.values(VISIT_LABELS), "気づき 受付", "継続的支援 実人数", "継続的支援 延べ件数"],
      areaRows, { wide: true, total: areaTotal }),
    table("districts", "地区別 (世帯訪問調査)", ["地区", ...Object.values(VISIT_LABELS)],
      visits.by_district.map((d) => [d.name, ...keys.map((k) => d[k])]),
      { wide: true, total: ["合計", ...keys.map((k) => visits.total[k])] }),
    table("months", "月別", ["月", "延べ訪問件数", "訪問世帯", "面談", "気づき 受付", "継続的支援 延べ件数", "継続的支援 実人数",
      "支え愛連絡会", "支援会議", "重層的支援会議"],
    report.months.map((m, i) => [monthLabel(m), visits.by_month[i].visits, visits.by_month[i].households_visited,
      visits.by_month[i].met, concerns.by_month[i].raised, outreach.by_month[i].contacts, outreach.by_month[i].people,
      meetings.by_month[i].sasaeai, meetings.by_month[i].support, meetings.by_month[i].multi_agency]), { wide: true }),
    table("coverage", "自治会別の進捗", ["自治会", "対象世帯", "完了世帯", "完了率 (%)"],
      coverage.map((c) => [`${c.code} ${c.name}`, c.in_scope, c.finished, c.coverage_pct])),
    table("sources", "気づきの経路", ["経路", "件数"], counted(concerns.by_source)),
    table("referred", "気づきのつなぎ先", ["つなぎ先", "件数"], counted(concerns.referred_to)),
    table("contact-kinds", "継続的支援の種別", ["種別", "延べ件数"], counted(outreach.contacts_by_kind)),
    table("stages", "年度末に継続中の支援の段階", ["段階", "件数"], counted(outreach.continuing_by_stage)),
  ].join("");
}

// --- the charts ------------------------------------------------------------------------------------

const charts = {};

function coverageColor(pct) {
  if (pct === null) return "#d9d9d9";
  if (pct >= 100) return "#1a9850";
  if (pct >= 75) return "#91cf60";
  if (pct >= 50) return "#fee08b";
  if (pct >= 25) return "#fc8d59";
  return "#d73027";
}

function chartSpecs(report) {
  const months = report.months.map(monthLabel);
  const coverage = [...report.visits.coverage].sort((a, b) => (b.coverage_pct ?? -1) - (a.coverage_pct ?? -1)
    || a.code.localeCompare(b.code));
  // The categories that have concerns (a suppressed count, null, is one to four of them), most first.
  const categories = report.concerns.by_category.filter((c) => c.count !== 0)
    .sort((a, b) => (b.count ?? 0) - (a.count ?? 0));
  const tooltip = { callbacks: { label: (ctx) => `${ctx.dataset.label}: ${fmt(ctx.raw)}` } };
  return {
    monthly: {
      type: "bar",
      data: {
        labels: months,
        datasets: [
          { label: "延べ訪問件数", data: report.visits.by_month.map((r) => r.visits), backgroundColor: "#2f6fb0", order: 2 },
          { label: "訪問世帯 (実世帯数)", data: report.visits.by_month.map((r) => r.households_visited),
            backgroundColor: "#9fb3c8", order: 3 },
          { label: "継続的支援 延べ件数", data: report.outreach.by_month.map((r) => r.contacts), type: "line",
            borderColor: "#d08c00", backgroundColor: "#d08c00", spanGaps: false, order: 1 },  // drawn over the bars
        ],
      },
      options: {
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { tooltip, legend: { labels: { sort: (a, b) => a.datasetIndex - b.datasetIndex } } },
      },
    },
    coverage: {
      type: "bar",
      data: {
        labels: coverage.map((c) => c.name),
        datasets: [{ label: "訪問完了率 (%)", data: coverage.map((c) => c.coverage_pct),
          backgroundColor: coverage.map((c) => coverageColor(c.coverage_pct)) }],
      },
      options: {
        indexAxis: "y",
        scales: { x: { min: 0, max: 100, ticks: { callback: (v) => `${v}%` } } },
        plugins: { legend: { display: false },
          tooltip: { callbacks: { label: (ctx) => {
            const c = coverage[ctx.dataIndex];
            return `${ctx.raw === null ? SUPPRESSED : `${ctx.raw}%`} (${fmt(c.finished)} / ${fmt(c.in_scope)} 世帯)`;
          } } } },
      },
      rows: coverage.length,
    },
    concerns: {
      type: "bar",
      data: {
        labels: categories.map((c) => c.label),
        datasets: [{ label: "件数", data: categories.map((c) => c.count), backgroundColor: "#7b61a8" }],
      },
      options: { indexAxis: "y", scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { display: false }, tooltip } },
      rows: categories.length,
    },
  };
}

// Canvas text does not wait for a web font: load the faces (the unicode-range subsets) the charts'
// words need, in both weights, before drawing.
async function loadChartFonts(specs) {
  const words = ["0123456789,.%-—()/ 月世帯", "延べ訪問件数"];
  for (const spec of Object.values(specs)) {
    words.push(...spec.data.labels, ...spec.data.datasets.map((d) => d.label));
  }
  const text = words.join("");
  await Promise.all(["400", "700"].map((weight) => document.fonts.load(`${weight} 12px ${FONT}`, text)));
}

function renderCharts(report, specs) {
  Chart.defaults.font.family = FONT;
  Chart.defaults.color = "#1f2933";
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  for (const [name, spec] of Object.entries(specs)) {
    if (charts[name]) charts[name].destroy();
    delete charts[name];
    const box = $(`chart-${name}-box`);
    const empty = $(`chart-${name}-empty`);
    const nothing = spec.rows !== undefined && spec.rows === 0;
    if (empty) empty.hidden = !nothing;
    box.hidden = nothing;
    $(`chart-${name}-note`).hidden = true;
    if (nothing) continue;
    if (spec.rows !== undefined) box.style.height = `${Math.max(160, spec.rows * 26 + 50)}px`;
    const { rows: _rows, ...chartConfig } = spec;
    charts[name] = new Chart($(`chart-${name}`), chartConfig);
    const hasSuppressed = spec.data.datasets.some((d) => d.data.some((v) => v === null));
    $(`chart-${name}-note`).hidden = !hasSuppressed;
  }
}

// --- load and draw ---------------------------------------------------------------------------------

async function load() {
  document.body.dataset.state = "loading";
  $("error").hidden = true;
  const url = isPublic() && !config.public_only ? `${config.api}?public=true` : config.api;
  const report = await api(url);
  renderHeader(report);
  renderCards(report);
  renderTables(report);
  const specs = chartSpecs(report);
  await loadChartFonts(specs);
  renderCharts(report, specs);
  await document.fonts.ready;
  window.tsunaguReports = { report, charts };
  document.body.dataset.state = "ready";
}

// --- exports ---------------------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });
const EXPORT_STATUS = { queued: "順番待ち", running: "作成中" };  // and done; failed, expired end it

async function exportReport(button) {
  const buttons = document.querySelectorAll(".exports button");
  const status = $("export-status");
  buttons.forEach((b) => { b.disabled = true; });
  try {
    const body = { kind: "fiscal_year_report", format: button.dataset.format, fiscal_year: config.year, public: isPublic() };
    if (button.dataset.encoding) body.encoding = button.dataset.encoding;
    status.textContent = "作成を依頼しています…";
    let job = await api(config.exports, { method: "POST", body: JSON.stringify(body) });
    const deadline = Date.now() + 10 * 60 * 1000;
    while (job.status !== "done") {
      if (!(job.status in EXPORT_STATUS)) throw new Error(job.error || `作成できませんでした (${job.status})`);
      if (Date.now() > deadline) throw new Error("時間がかかりすぎています。しばらくしてからもう一度お試しください");
      const progress = job.progress === null || job.progress === undefined ? "" : ` ${job.progress}%`;
      status.textContent = `${EXPORT_STATUS[job.status]}${progress}…`;
      await sleep(1000);
      job = await api(`${config.exports}/${encodeURIComponent(job.id)}`);
    }
    status.textContent = "ダウンロードします";
    window.location.assign(job.download);
  } catch (error) {
    status.textContent = `ダウンロード: ${error.message}`;
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

document.querySelectorAll(".exports button").forEach((button) => {
  button.addEventListener("click", () => exportReport(button));
});
$("year").addEventListener("change", () => $("year-form").requestSubmit());
if ($("public")) $("public").addEventListener("change", () => load().catch((error) => showError(error.message)));

await load().catch((error) => showError(error.message));
