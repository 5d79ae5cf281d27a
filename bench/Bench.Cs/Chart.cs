using System.Globalization;
using System.Text.Json.Nodes;
using ScottPlot;

namespace HybridBatch.Bench;

/// <summary>The chart: throughput and detection latency against the number of jobs.</summary>
internal static class Chart
{
    public static void Write(string path, List<JsonObject> scenarios)
    {
        var multiplot = new ScottPlot.Multiplot();
        multiplot.AddPlots(2);
        var throughput = multiplot.GetPlot(0);
        var latency = multiplot.GetPlot(1);
        var groups = scenarios.Where(s => s["jobs_per_s"] is not null)
            .GroupBy(s => $"{(s["nodes"]!.GetValue<string>().Contains("fake", StringComparison.Ordinal) ? s["nodes"] : "real node")}, {s["command"]}{(s["object_kind"]?.GetValue<string>() == "pod" ? ", pod mode" : "")}")
            .ToList();
        var ticks = new SortedSet<int>();
        foreach (var group in groups)
        {
            var points = group.OrderBy(s => s["jobs"]!.GetValue<int>()).ToList();
            double[] xs = [.. points.Select(s => Math.Log10(s["jobs"]!.GetValue<int>()))];
            foreach (var p in points)
            {
                ticks.Add(p["jobs"]!.GetValue<int>());
            }

            Add(throughput, xs, points, "jobs_per_s", $"HybridBatch ({group.Key})", false);
            Add(throughput, xs, points, "baseline_jobs_per_s", $"baseline ({group.Key})", true);
            Add(latency, xs, points, "detect_p50_ms", $"p50 HybridBatch ({group.Key})", false);
            Add(latency, xs, points, "detect_p99_ms", $"p99 HybridBatch ({group.Key})", false);
            Add(latency, xs, points, "baseline_detect_p50_ms", $"p50 baseline ({group.Key})", true);
        }

        foreach (var plot in new[] { throughput, latency })
        {
            plot.Axes.Bottom.SetTicks([.. ticks.Select(t => Math.Log10(t))], [.. ticks.Select(t => t.ToString(CultureInfo.InvariantCulture))]);
            plot.Axes.Bottom.Label.Text = "jobs (log scale)";
            plot.ShowLegend(ScottPlot.Edge.Right);
        }

        throughput.Title("Throughput, end to end");
        throughput.Axes.Left.Label.Text = "jobs/s";
        latency.Title("Detection latency: container exit → returned");
        latency.Axes.Left.Label.Text = "ms";
        multiplot.SavePng(path, 1400, 1000);
    }

    private static void Add(ScottPlot.Plot plot, double[] xs, List<JsonObject> points, string field, string label, bool dashed)
    {
        var pairs = xs.Zip(points).Where(p => p.Second[field] is not null).ToList();
        if (pairs.Count == 0)
        {
            return;
        }

        double[] x = [.. pairs.Select(p => p.First)];
        double[] y = [.. pairs.Select(p => p.Second[field]!.GetValue<double>())];
        var scatter = plot.Add.Scatter(x, y);
        scatter.LegendText = label;
        scatter.MarkerSize = 8;
        if (dashed)
        {
            scatter.LinePattern = ScottPlot.LinePattern.Dashed;
        }
    }
}
