"""The leaderboard site in a real browser: headless Chromium renders the table, sorts it, renders a run page and
shows a model output containing <script> as text. Runs are real records (harness.store), written without a model."""

import json
import re
import shutil
import subprocess
from html import unescape

import pytest

from harness.cli import main
from harness.store import Index, Run

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
PAYLOAD = '<script>document.title="pwned"</script><b>bold?</b>'


def make_runs(out):
    """Two models x two tasks, one run with --limit, one failed run, and a run scoring two models of its own."""

    def record(task, model, metrics, primary, limit=None, samples=(), family=None, fail=None):
        config = {"task": task, "task_family": family or task, "model": model, "limit": limit, "model_args": {}}
        run = Run.open(out, config, {**config, "metrics": metrics})
        run.append_samples(list(samples))
        if fail:
            run.fail("failed", fail)
        else:
            run.finish(metrics, primary)
        run.close()
        return run.id

    record(
        "qa",
        "hf:alpha",
        {"acc": 0.25, "acc_stderr": 0.05},
        "acc",
        samples=[{"id": "0", "prompt": "Say hi", "completion": PAYLOAD, "acc": 0.0}],
    )
    record("qa", "hf:beta", {"acc": 0.75, "acc_stderr": 0.04}, "acc")
    record("sums", "hf:alpha", {"exact_match": 0.5, "exact_match_stderr": 0.1}, "exact_match", limit=10)
    record("sums", "hf:beta", {"exact_match": 0.9, "exact_match_stderr": 0.03}, "exact_match")
    record("qa", "hf:gamma", {}, "acc", fail="ValueError: the disk is full")
    record("graph", "scratch", {"dfs/acc": 0.9, "path/acc": 0.6, "acc": 0.9, "baseline/random-path/acc": 0.5}, "acc")


def chromium(tmp_path, *args) -> str:
    """Headless Chromium with no network and its profile under tmp_path; returns stdout."""
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--proxy-server=127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--virtual-time-budget=2000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def click_page(site):
    """A page that opens index.html in a frame, clicks the graph/acc header twice and writes the first two models
    after each click (ascending, then descending; the models without a graph run stay last)."""
    page = site / "click-test.html"
    page.write_text("""<!doctype html><html><body><pre id="out"></pre><iframe id="f" src="index.html"></iframe>
<script>
document.getElementById("f").onload = function () {
  var doc = this.contentDocument, header = doc.querySelectorAll("#leaderboard th")[3], seen = [];
  for (var i = 0; i < 2; i++) {
    header.click();
    seen.push(Array.from(doc.querySelectorAll("#leaderboard tbody tr")).slice(0, 2).map(function (row) {
      return row.cells[0].textContent.trim(); }));
  }
  document.getElementById("out").textContent = JSON.stringify(seen);
};
</script></body></html>""")
    return page


def table_rows(dom: str, table_id: str) -> list[list[str]]:
    """The cells' text: a value without its stderr, CI and significance mark."""
    table = re.search(rf'<table[^>]*id="{table_id}".*?</table>', dom, re.S).group(0)
    body = re.sub(r'<span class="(ci|mark)".*?</span>', "", table[table.index("<tbody>") :], flags=re.S)
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    return [
        [unescape(re.sub(r"<[^>]+>", "", c)).split("±")[0].strip() for c in re.findall(r"<td.*?</td>", r, re.S)]
        for r in rows
    ]


def test_the_leaderboard_site_in_headless_chromium(tmp_path, capsys):
    out, site = tmp_path / "runs", tmp_path / "site"
    make_runs(out)
    assert main(["leaderboard", "--out", str(out), "--html", str(site)]) == 0
    if CHROMIUM is None:
        pytest.skip("no chromium binary here (Debian: apt-get install chromium); .ci/run installs it")
    index = (site / "index.html").as_uri()

    dom = chromium(tmp_path, "--dump-dom", index)
    header = re.search(r'<table[^>]*id="leaderboard".*?</thead>', dom, re.S).group(0)
    columns = [unescape(re.sub(r"<[^>]+>", "", h)).strip() for h in re.findall(r"<th.*?</th>", header, re.S)]
    assert columns == ["model", "qa/acc", "sums/exact_match", "graph/acc"]  # one column per task and metric
    rows = {r[0]: r[1:] for r in table_rows(dom, "leaderboard")}
    assert set(rows) == {"hf:alpha", "hf:beta", "scratch/dfs", "scratch/path", "baseline:random-path"}
    assert rows["hf:alpha"][:2] == ["0.25", "0.5"] and "*" in dom  # the --limit run is marked
    assert rows["scratch/path"][2] == "0.6"

    ascending = chromium(tmp_path, "--dump-dom", index + "#sort=leaderboard:1:asc")
    assert [r[0] for r in table_rows(ascending, "leaderboard")][:2] == ["hf:alpha", "hf:beta"]
    descending = chromium(tmp_path, "--dump-dom", index + "#sort=leaderboard:1:desc")
    assert [r[0] for r in table_rows(descending, "leaderboard")][:2] == ["hf:beta", "hf:alpha"]
    by_graph = chromium(tmp_path, "--dump-dom", index + "#sort=leaderboard:3:desc")
    assert [r[3] for r in table_rows(by_graph, "leaderboard")][:3] == ["0.9", "0.6", "0.5"]

    clicked = json.loads(
        unescape(
            re.search(
                r'<pre id="out">(.*?)</pre>',
                chromium(tmp_path, "--allow-file-access-from-files", "--dump-dom", click_page(site).as_uri()),
                re.S,
            ).group(1)
        )
    )
    assert clicked == [["baseline:random-path", "scratch/path"], ["scratch/dfs", "scratch/path"]]  # click, again

    run_id = next(r["run_id"] for r in Index(out).runs() if r["model"] == "hf:alpha" and r["task"] == "qa")
    page = chromium(tmp_path, "--dump-dom", (site / "runs" / f"{run_id}.html").as_uri())
    assert f"<title>{run_id}</title>" in page  # the payload's script never ran
    assert "&lt;script&gt;document.title" in page and "<b>bold?</b>" not in page  # shown as text
    assert "acc" in page and "Say hi" in page and "config" in page.lower()
    failed = next(r["run_id"] for r in Index(out).runs() if r["status"] == "failed")
    assert "the disk is full" in (site / "runs" / f"{failed}.html").read_text()

    shot = tmp_path / "leaderboard.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,900", index)
    assert shot.stat().st_size > 5000


def test_exclude_limited_drops_partial_runs(tmp_path, capsys):
    out = tmp_path / "runs"
    make_runs(out)
    assert main(["leaderboard", "--out", str(out), "--format", "json", "--exclude-limited"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["hf:beta"]["sums/exact_match"] == 0.9 and "sums/exact_match" not in rows["hf:alpha"]
    assert rows["hf:alpha"]["qa/acc"] == 0.25
    assert main(["leaderboard", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "0.5 ± 0.1 [0.304, 0.696]*" in table and "--limit" in table  # value ± stderr [95% CI]


def significance_runs(out) -> dict[str, str]:
    """A 0/1 column (mc/acc, 40 questions) and a loss-like continuous one (lm/kl, lower is better), with
    per-sample records: models tied with the best, clearly worse, and runs over other documents."""
    import random

    def record(task, model, metric, scores, docs=None):
        samples = [
            {"id": doc_id, "target": target, metric: score}
            for (doc_id, target), score in zip(docs or [(str(i), f"t{i}") for i in range(len(scores))], scores)
        ]
        mean = sum(scores) / len(scores)
        stderr = (sum((s - mean) ** 2 for s in scores) / (len(scores) - 1) / len(scores)) ** 0.5
        config = {"task": task, "task_family": task, "model": model, "limit": None, "model_args": {}}
        run = Run.open(out, config, config)
        run.append_samples(samples)
        run.finish({metric: mean, f"{metric}_stderr": stderr}, metric)
        run.close()
        return run.id

    ids = {
        "best": record("mc", "hf:best", "acc", [1.0] * 36 + [0.0] * 4),  # 0.9
        "close": record("mc", "hf:close", "acc", [1.0] * 34 + [0.0] * 6),  # 2 discordant pairs: p = 0.5
        "worse": record("mc", "hf:worse", "acc", [1.0] * 20 + [0.0] * 20),  # 16 discordant pairs, all one way
        # other questions (other ids; the same ids with other targets): never paired, an unpaired z-test instead
        "elsewhere": record("mc", "hf:elsewhere", "acc", [1.0] * 35 + [0.0] * 5, [(f"x{i}", "y") for i in range(40)]),
        "relabelled": record("mc", "hf:relabelled", "acc", [1.0] * 30 + [0.0] * 10, [(str(i), "z") for i in range(40)]),
    }
    rng = random.Random(0)
    kl = [1.0 + rng.gauss(0, 0.2) for _ in range(20)]
    ids["kl_best"] = record("lm", "hf:best", "kl", kl)
    ids["kl_close"] = record("lm", "hf:close", "kl", [k + rng.gauss(0.01, 0.05) for k in kl])
    ids["kl_worse"] = record("lm", "hf:worse", "kl", [k + 0.5 + rng.gauss(0, 0.05) for k in kl])
    return ids


def cell_marks(dom: str) -> dict[str, list[str]]:
    """Per model, each task column's significance mark ("" for none)."""
    table = re.search(r'<table[^>]*id="leaderboard".*?</table>', dom, re.S).group(0)
    rows = re.findall(r"<tr>(.*?)</tr>", table[table.index("<tbody>") :], re.S)
    out = {}
    for row in rows:
        cells = re.findall(r"<td.*?</td>", row, re.S)
        marks = [re.search(r'<span class="mark"[^>]*>(.*?)</span>', c, re.S) for c in cells[1:]]
        out[re.sub(r"<[^>]+>", "", cells[0]).strip()] = [m.group(1).strip() if m else "" for m in marks]
    return out


def test_leaderboard_marks_models_not_significantly_different_from_the_best(tmp_path, capsys):
    import scipy.stats
    from statsmodels.stats.multitest import multipletests

    from harness import significance
    from harness.report import leaderboard_cells

    out, site = tmp_path / "runs", tmp_path / "site"
    significance_runs(out)
    runs = Index(out).runs("finished")
    marks = significance.column_marks(leaderboard_cells(runs), runs)
    acc = {row: marks[(row, "mc/acc")] for row in ("hf:best", "hf:close", "hf:worse", "hf:elsewhere", "hf:relabelled")}
    assert acc["hf:best"].test == "best" and acc["hf:close"].test == "paired McNemar exact test"
    assert acc["hf:worse"].test == "paired McNemar exact test"
    assert acc["hf:elsewhere"].test == acc["hf:relabelled"].test == "unpaired z-test"  # other documents
    se = {k: (k / 40 * (1 - k / 40) / 39) ** 0.5 for k in (36, 35, 30)}  # the runs' stderrs: sqrt(p(1-p)/(n-1))
    raw = [
        scipy.stats.binomtest(2, 2).pvalue,
        scipy.stats.binomtest(16, 16).pvalue,
        2 * scipy.stats.norm.sf(0.025 / (se[36] ** 2 + se[35] ** 2) ** 0.5),
        2 * scipy.stats.norm.sf(0.15 / (se[36] ** 2 + se[30] ** 2) ** 0.5),
    ]
    holm = multipletests(raw, method="holm")[1]
    got = [acc[m].p_adjusted for m in ("hf:close", "hf:worse", "hf:elsewhere", "hf:relabelled")]
    assert got == pytest.approx(list(holm))
    assert [acc[m].symbol for m in acc] == ["†", "†", "", "‡", "‡"]
    low, high = acc["hf:best"].low, acc["hf:best"].high  # Wilson's interval from the samples
    assert (low, high) == pytest.approx(scipy.stats.binomtest(36, 40).proportion_ci(method="wilson"))
    kl = {row: marks[(row, "lm/kl")] for row in ("hf:best", "hf:close", "hf:worse")}
    assert [kl[m].symbol for m in kl] == ["†", "†", ""]  # lower is better for KL: hf:best is the lowest
    assert kl["hf:close"].test == "paired sign-flip permutation test"

    assert main(["leaderboard", "--out", str(out), "--format", "markdown"]) == 0
    text = capsys.readouterr().out
    assert "Holm-corrected" in text and "never paired" in text  # the rule, stated under the table
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| hf:")}
    assert "[0.7695, 0.9604]†" in rows["hf:best"] and rows["hf:worse"].count("†") == 0
    assert "‡" in rows["hf:elsewhere"]

    assert main(["leaderboard", "--out", str(out), "--html", str(site)]) == 0
    if CHROMIUM is None:
        pytest.skip("no chromium binary here (Debian: apt-get install chromium); .ci/run installs it")
    dom = chromium(tmp_path, "--dump-dom", (site / "index.html").as_uri())
    assert cell_marks(dom) == {
        "hf:best": ["†", "†"],
        "hf:close": ["†", "†"],
        "hf:worse": ["", ""],
        "hf:elsewhere": ["‡", ""],
        "hf:relabelled": ["‡", ""],
    }
    rule = unescape(re.search(r'<p id="rule">(.*?)</p>', dom, re.S).group(1))
    assert "Holm-corrected" in rule and "paired by sample id" in rule
    assert 'title="paired McNemar exact test against the best, Holm-adjusted p = 1"' in dom


def measure(tmp_path, site, page: str, script: str) -> dict:
    """Open ``page`` (relative to the site) in a 1280 px frame and return what ``script`` (a JS expression over
    ``doc``, the page's document) measures, as JSON: the width a reader's window sees."""
    probe = site / "measure.html"
    probe.write_text(f"""<!doctype html><html><body style="margin:0"><pre id="out"></pre>
<iframe id="f" src="{page}" style="width:1280px;height:900px;border:0"></iframe>
<script>
document.getElementById("f").onload = function () {{
  var doc = this.contentDocument;
  document.getElementById("out").textContent = JSON.stringify({script});
}};
</script></body></html>""")
    dom = chromium(tmp_path, "--allow-file-access-from-files", "--window-size=1400,1000", "--dump-dom", probe.as_uri())
    return json.loads(unescape(re.search(r'<pre id="out">(.*?)</pre>', dom, re.S).group(1)))


def graph_cot_runs(out) -> list[str]:
    """Four graph_cot depths (a column each), each scoring two trained models and two baselines, with a plot."""
    ids = []
    for depth in (1, 2, 3, 4):
        metrics = {}
        for name in ("dfs", "path", "baseline/random-path", "baseline/random-shortest-path"):
            metrics[f"{name}/evidence_accuracy"], metrics[f"{name}/evidence_accuracy_stderr"] = (
                0.1234 + depth / 10,
                0.0345,
            )
            metrics |= {f"{name}/evidence_accuracy@B={b},N={n}": 0.5 for b in (4, 8, 12) for n in (1, 2, 4, 8, 16)}
        metrics["evidence_accuracy"], metrics["evidence_accuracy_stderr"] = 0.5, 0.05
        config = {"task": f"graph_cot_d{depth}", "task_family": "graph_cot", "variant": f"depth={depth}"}
        config |= {"model": "scratch", "limit": None, "model_args": {}}
        run = Run.open(out, config, config)
        figure = __import__("harness.report", fromlist=["figure"]).figure()
        fig, ax = figure.subplots(figsize=(4, 3))
        ax.plot([0, 1], [0, depth])
        fig.savefig(run.path("heatmap_dfs.png"))
        figure.close(fig)
        run.finish(metrics, "evidence_accuracy")
        run.close()
        ids.append(run.id)
    return ids


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary here (Debian: apt-get install chromium)")
def test_four_graph_cot_columns_fit_a_1280_px_window_and_run_pages_lead_with_plots(tmp_path):
    out, site = tmp_path / "runs", tmp_path / "site"
    ids = graph_cot_runs(out)
    assert main(["leaderboard", "--out", str(out), "--html", str(site)]) == 0
    width = measure(
        tmp_path, site, "index.html", "[doc.documentElement.scrollWidth, doc.querySelectorAll('th').length]"
    )
    assert width[0] <= 1280 and width[1] >= 5, width  # the page never scrolls sideways

    script = """{plot: doc.querySelector("img").getBoundingClientRect().top,
      metrics: doc.getElementById("all-metrics").getBoundingClientRect().top,
      shown: doc.getElementById("metrics").checkVisibility() || doc.getElementById("all-metrics").open,
      headline: doc.querySelectorAll("#headline tr").length}"""
    page = measure(tmp_path, site, f"runs/{ids[0]}.html", script)
    assert page["plot"] < page["metrics"] and page["shown"] is False, page  # plots first, 125 metrics folded
    assert page["headline"] == 5  # the run's primary metric and each of its models'


def test_one_run_reads_in_the_singular_and_no_limit_note_without_a_limit(tmp_path, capsys):
    out, site = tmp_path / "runs", tmp_path / "site"
    config = {"task": "qa", "task_family": "qa", "model": "hf:alpha", "limit": None, "model_args": {}}
    run = Run.open(out, config, config)
    run.finish({"acc": 0.5}, "acc")
    run.close()
    assert main(["leaderboard", "--out", str(out), "--html", str(site)]) == 0
    text = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", "", (site / "index.html").read_text())))
    assert "1 model x 1 task from" in text
    assert "evaluated with --limit" not in text and "hide runs with --limit" not in text
    make_runs(out)  # now with a limited run: the note and the checkbox come back
    assert main(["leaderboard", "--out", str(out), "--html", str(site)]) == 0
    text = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", "", (site / "index.html").read_text())))
    assert "evaluated with --limit" in text and "5 models x 3 tasks" in text
