"""Summaries of runs and their rendering as text tables, Markdown and JSON."""
import statistics


def summarize(workload, runs, tool_names, baseline):
    """runs: list of run dicts (tool, round, ok, wall_s, ...). One row per tool."""
    by_round = {}
    for r in runs:
        if r["ok"]:
            by_round.setdefault(r["round"], {})[r["tool"]] = r["wall_s"]
    rows = []
    for name in tool_names:
        mine = [r for r in runs if r["tool"] == name]
        ok = [r for r in mine if r["ok"]]
        row = dict(tool=name, runs=len(mine), ok_runs=len(ok),
                   status="ok" if ok and len(ok) == len(mine) else None)
        if not ok:
            row["status"] = ("TIMEOUT" if any(r.get("timed_out") for r in mine)
                             else "FAILED" if mine else "not run")
            row["reason"] = next((r.get("reason") for r in mine if r.get("reason")), "")
            rows.append(row)
            continue
        if len(ok) != len(mine):
            row["status"] = "%d FAILED" % (len(mine) - len(ok))
            row["reason"] = next((r.get("reason") for r in mine if not r["ok"]), "")
        walls = [r["wall_s"] for r in ok]
        med = statistics.median(walls)
        row.update(
            wall_median_s=med, wall_min_s=min(walls), wall_max_s=max(walls),
            mb_per_s=workload.bytes / med / 1e6 if med > 0 else None,
            files_per_s=workload.files / med if med > 0 else None,
            cpu_median_s=statistics.median(r["cpu_s"] for r in ok),
            server_cpu_median_s=(statistics.median(r["server_cpu_s"] for r in ok)
                                 if ok[0]["server_cpu_s"] is not None else None),
            rss_peak_mib=max((r["rss_mib"] for r in ok if r["rss_mib"] is not None), default=None))
        if baseline is not None:
            ratios = [rd[name] / rd[baseline] for rd in by_round.values()
                      if name in rd and baseline in rd and rd[baseline] > 0]
            row["ratio_vs_ferry"] = statistics.median(ratios) if ratios else None
        rows.append(row)
    return rows


COLUMNS = ["tool", "median s", "min–max s", "MB/s", "files/s", "client CPU s", "sshd CPU s",
           "peak RSS MiB", "vs ferry"]


def _f(x, fmt):
    return "—" if x is None else fmt % x


def row_cells(row):
    if "wall_median_s" not in row:
        return [row["tool"], row["status"] + ((": " + row["reason"][:60]) if row.get("reason") else "")
                ] + [""] * (len(COLUMNS) - 2)
    ratio = row.get("ratio_vs_ferry")
    status = "" if row["status"] == "ok" else "  [" + row["status"] + "]"
    return [
        row["tool"] + status,
        "%.3f" % row["wall_median_s"],
        "%.3f–%.3f" % (row["wall_min_s"], row["wall_max_s"]),
        _f(row["mb_per_s"], "%.1f"),
        _f(row["files_per_s"], "%.0f"),
        "%.2f" % row["cpu_median_s"],
        _f(row["server_cpu_median_s"], "%.2f"),
        _f(row["rss_peak_mib"], "%.1f"),
        _f(ratio, "%.2f"),
    ]


def text_table(title, rows, notes=()):
    cells = [COLUMNS] + [row_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells if i < len(c)) for i in range(len(COLUMNS))]
    out = [title]
    for i, c in enumerate(cells):
        out.append("  " + "  ".join(x.ljust(w) for x, w in zip(c, widths)).rstrip())
        if i == 0:
            out.append("  " + "  ".join("-" * w for w in widths))
    out.extend("  " + n for n in notes)
    return "\n".join(out)


def md_table(title, rows, notes=()):
    out = ["### " + title, "", "| " + " | ".join(COLUMNS) + " |",
           "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for r in rows:
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in row_cells(r)) + " |")
    out.append("")
    out.extend(n + "  " for n in notes)
    out.append("")
    return "\n".join(out)
