"""``harness leaderboard --html DIR``: a static site of the runs in an output folder, opened without a server.

``index.html`` holds the models x tasks table (value ± stderr, its 95% CI, ``*`` for a run with --limit, a link per
cell to its run, and per column a mark on the best and on every model not significantly different from it, the
rule stated on the page; a click on a header sorts by that column, a checkbox hides the limited runs) and the list
of every run.
``runs/<id>.html`` shows a run's headline metrics and plots (copied beside it) first, then every metric (folded),
its config and a filterable table of its samples. Wide tables scroll inside their frame, the first column fixed.
Everything from run records is untrusted text (model outputs, prompts, data): templates render with Jinja2's
autoescape on, and the page's script reads only ``data-`` attributes, never run text as code.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from harness import report
from harness.store import read_jsonl

MAX_SAMPLES = 2000  # samples shown on a run page (the file keeps them all)
MAX_CELL = 4000  # characters of one sample field shown on a page

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; }
.frame { max-width: 100%; overflow-x: auto; margin: 1em 0; }  /* a wide table scrolls inside, not the page */
.frame td:first-child, .frame th:first-child { position: sticky; left: 0; background: #fff; z-index: 1; }
.frame th:first-child { background: #f3f3f3; }
#leaderboard td.num { white-space: nowrap; }
#leaderboard .ci { display: block; }  /* the interval under the value keeps a column narrow */
details > summary { cursor: pointer; margin: 1em 0; font-weight: bold; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th.sortable { cursor: pointer; background: #f3f3f3; }
th.sortable:hover { background: #e4e4e4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.limited { color: #a05a00; }
.stderr, .ci { color: #777; }
.mark { color: #1a7f37; font-weight: bold; }
pre { margin: 0; white-space: pre-wrap; word-break: break-word; max-width: 60em; }
.failed { color: #b00020; }
img { max-width: 640px; border: 1px solid #ddd; margin: 4px; }
"""

SORT_SCRIPT = """
function sortTable(table, column, ascending) {
  var body = table.tBodies[0], rows = Array.from(body.rows);
  table.querySelectorAll("th").forEach(function (h) { delete h.dataset.order; });
  table.tHead.rows[0].cells[column].dataset.order = ascending ? "asc" : "desc";
  function key(row) {
    var v = row.cells[column].dataset.value;
    return v === undefined || v === "" ? null : (isNaN(Number(v)) ? v.toLowerCase() : Number(v));
  }
  rows.sort(function (a, b) {
    var x = key(a), y = key(b);
    if (x === null) return y === null ? 0 : 1; if (y === null) return -1;   /* empty cells last either way */
    return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
  });
  rows.forEach(function (row) { body.appendChild(row); });
}
document.querySelectorAll("table.sortable").forEach(function (table) {
  Array.from(table.tHead.rows[0].cells).forEach(function (th, column) {
    th.addEventListener("click", function () { sortTable(table, column, th.dataset.order !== "asc"); });
  });
});
/* a link can carry a sort: index.html#sort=leaderboard:2:desc */
var wanted = /^#sort=([\\w-]+):(\\d+):(asc|desc)$/.exec(location.hash);
if (wanted && document.getElementById(wanted[1])) {
  sortTable(document.getElementById(wanted[1]), Number(wanted[2]), wanted[3] === "asc");
}
var hide = document.getElementById("hide-limited");
if (hide) hide.addEventListener("change", function () {
  document.querySelectorAll("td.limited").forEach(function (td) {
    td.querySelector(".cell").hidden = hide.checked;
    td.dataset.value = hide.checked ? "" : td.dataset.full;
  });
});
var filter = document.getElementById("filter");
if (filter) filter.addEventListener("input", function () {
  var text = filter.value.toLowerCase();
  document.querySelectorAll("#samples tbody tr").forEach(function (row) {
    row.hidden = text !== "" && row.textContent.toLowerCase().indexOf(text) < 0;
  });
});
"""

INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>harness leaderboard</title><style>{{ style }}</style></head>
<body>
<h1>Leaderboard</h1>
<p>{{ count(models|length, "model") }} x {{ count(columns|length, "task") }} from {{ out }}. Each cell: the task's
headline metric ± its standard error [95% CI], from the model's latest full run (a run with --limit, marked *,
only where no full run exists). Click a column header to sort.</p>
<p id="rule">{{ rule }}</p>
{% if limited_shown %}<label><input type="checkbox" id="hide-limited"> hide runs with --limit</label>{% endif %}
<div class="frame"><table class="sortable" id="leaderboard">
<thead><tr><th class="sortable">model</th>{% for column in columns %}<th class="sortable">{% for part in
column.split("/") %}{{ part }}{% if not loop.last %}/<wbr>{% endif %}{% endfor %}</th>
{% endfor %}</tr></thead>
<tbody>
{% for model in models %}<tr><td data-value="{{ model }}">{{ model }}</td>
{% for column in columns %}{% set cell = cells.get((model, column)) %}{% if cell %}
<td class="num{% if cell.limit is not none %} limited{% endif %}" data-value="{{ cell.value }}"
 data-full="{{ cell.value }}"><span class="cell"><a href="runs/{{ cell.run_id }}.html">{{ fmt(cell.value) }}</a>
{% if cell.stderr is not none %}<span class="stderr">± {{ fmt(cell.stderr) }}</span>{% endif %}
{% set mark = marks.get((model, column)) %}{% if mark and mark.symbol %}<span class="mark" title="{{ mark.title }}"
 data-test="{{ mark.test }}">{{ mark.symbol }}</span>{% endif %}
{% if cell.limit is not none %}<span title="run with --limit {{ cell.limit }}">*</span>{% endif %}
{% if mark and mark.low is not none %}<span class="ci">[{{ fmt(mark.low) }}, {{ fmt(mark.high) }}]</span>{% endif %}
</span></td>
{% else %}<td class="num" data-value=""></td>{% endif %}{% endfor %}</tr>
{% endfor %}</tbody></table></div>
{% if limited_shown %}<p>* evaluated with --limit (a partial run); exclude them with
<code>harness leaderboard --exclude-limited</code>.</p>{% endif %}
<h2>Runs</h2>
<div class="frame"><table class="sortable" id="runs"><thead><tr>{% for h in run_columns %}
<th class="sortable">{{ h }}</th>{% endfor %}</tr></thead><tbody>
{% for run in runs %}<tr><td data-value="{{ run.run_id }}"><a href="runs/{{ run.run_id }}.html">{{ run.run_id }}</a>
</td>{% for h in run_columns[1:] %}<td data-value="{{ run.row[h] }}"{% if h == "status" and run.status != "finished"
%} class="failed"{% endif %}>{{ run.row[h] }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></div>
<script>{{ script|safe }}</script>
</body></html>
"""

RUN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ run.run_id }}</title><style>{{ style }}</style></head>
<body>
<p><a href="../index.html">leaderboard</a></p>
<h1>{{ run.run_id }}</h1>
<table>
{% for key in ("task", "model", "status", "error", "dir") %}{% if run[key] %}<tr><th>{{ key }}</th>
<td{% if key == "error" %} class="failed"{% endif %}>{{ run[key] }}</td></tr>{% endif %}{% endfor %}
</table>
<h2>Headline</h2>
<table id="headline">{% for row in headline %}<tr><th>{{ row.metric }}</th><td class="num">{{ fmt(row.value) }}
{% if row.stderr is not none %}<span class="stderr">± {{ fmt(row.stderr) }}</span>{% endif %}</td></tr>
{% endfor %}</table>
{% if plots %}<h2>Plots</h2>{% for plot in plots %}<a href="{{ plot }}"><img src="{{ plot }}" alt="{{ plot }}"></a>
{% endfor %}{% endif %}
<details id="all-metrics"><summary>All {{ count(metrics|length, "metric") }}</summary>
<div class="frame"><table class="sortable" id="metrics"><thead><tr><th class="sortable">metric</th>
<th class="sortable">value</th><th class="sortable">stderr</th></tr></thead><tbody>
{% for row in metrics %}<tr><td data-value="{{ row.metric }}">{{ row.metric }}</td>
<td class="num" data-value="{{ row.value }}">{{ fmt(row.value) }}</td>
<td class="num" data-value="{{ row.stderr if row.stderr is not none else '' }}">{{ fmt(row.stderr) }}</td></tr>
{% endfor %}</tbody></table></div></details>
<h2>Config</h2>
<pre id="config">{{ config }}</pre>
<h2>Samples</h2>
<p>{{ samples|length }} of {{ total }} samples{% if samples|length < total %} (the first {{ samples|length }};
all are in samples.jsonl){% endif %}. <input id="filter" placeholder="filter rows"></p>
<table class="sortable" id="samples"><thead><tr>{% for key in sample_columns %}<th class="sortable">{{ key }}</th>
{% endfor %}</tr></thead><tbody>
{% for sample in samples %}<tr>{% for key in sample_columns %}{% set value = sample.get(key) %}
<td data-value="{{ plain(value) }}"><pre>{{ show(value) }}</pre></td>{% endfor %}</tr>
{% endfor %}</tbody></table>
<script>{{ script|safe }}</script>
</body></html>
"""


def _environment():
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.globals.update(fmt=report.fmt_value, style=STYLE, script=SORT_SCRIPT, show=_show, plain=_plain, count=_count)
    return env


def _count(n: int, noun: str) -> str:
    """ "1 model", "2 models": a page that says "1 models" reads as broken."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _show(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_CELL else text[:MAX_CELL] + f" ... ({len(text) - MAX_CELL} more characters)"


def _plain(value) -> str:
    """A sort key: numbers as numbers, anything else as (short) text."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    return _show(value)[:200]


def write_site(runs: list[dict], out: Path, site: Path, include_limited: bool = True) -> Path:
    """Write ``site/index.html`` and a page per run; returns the index's path."""
    env = _environment()
    site = Path(site)
    (site / "runs").mkdir(parents=True, exist_ok=True)
    from harness import significance

    cells = report.leaderboard_cells(runs, include_limited)
    models = list(dict.fromkeys(c.row for c in cells))
    columns = list(dict.fromkeys(c.column for c in cells))
    run_columns = ["run", "task", "model", "status", "headline", "limit", "started", "duration", "error"]
    listed = [{"run_id": r["run_id"], "status": r["status"], "row": _run_row(r)} for r in runs]
    (site / "index.html").write_text(
        env.from_string(INDEX).render(
            out=str(out),
            models=models,
            columns=columns,
            cells={(c.row, c.column): c for c in cells},
            marks=significance.column_marks(cells, runs),
            rule=significance.RULE,
            limited_shown=any(c.limit is not None for c in cells),
            runs=listed,
            run_columns=run_columns,
        )
    )
    page = env.from_string(RUN)
    for run in runs:
        _write_run_page(page, run, site / "runs")
    return site / "index.html"


def _run_row(run: dict) -> dict:
    from harness.runs_command import summary

    return summary(run)


def _write_run_page(page, run: dict, folder: Path) -> None:
    source = Path(run["dir"])
    plots = []
    if source.is_dir():
        assets = folder / run["run_id"]
        for png in sorted(source.glob("*.png")):
            assets.mkdir(exist_ok=True)
            shutil.copyfile(png, assets / png.name)
            plots.append(f"{run['run_id']}/{png.name}")
    config = (source / "config.yaml").read_text() if (source / "config.yaml").is_file() else "(no config.yaml)"
    try:
        samples = read_jsonl(source / "samples.jsonl")
    except Exception:  # a damaged file should not take the site down; the page says so
        samples = [{"error": "samples.jsonl could not be read"}]
    columns = list(dict.fromkeys(k for s in samples[:MAX_SAMPLES] for k in s))
    (folder / f"{run['run_id']}.html").write_text(
        page.render(
            run=run,
            metrics=report.metric_rows(run["metrics"]),
            headline=report.headline_rows(run["metrics"], run.get("primary_metric"))[0],
            plots=plots,
            config=config,
            samples=samples[:MAX_SAMPLES],
            total=len(samples),
            sample_columns=columns,
        )
    )
