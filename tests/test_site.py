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
    table = re.search(rf'<table[^>]*id="{table_id}".*?</table>', dom, re.S).group(0)
    body = table[table.index("<tbody>") :]
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
    assert "0.5 ± 0.1*" in table and "--limit" in table
