"""The benchmark scripts behind the recipes' time tables run and report every measure
(their numbers are not checked: speed is measured by running them, not by tests)."""
import json

from merit.bin import bench_audio_stages, bench_inference, bench_stages
from merit.metrics.se import SE_METRICS


def test_audio_stages_benchmark_reports_each_cpu_stage(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench_audio_stages.main(["--max_utts", "2", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["utterances"] == 2 and results["audio_seconds"] >= 2 * 6.0
    printed = capsys.readouterr().out
    metrics = [f"metric_{metric.name}_rtf" for metric in SE_METRICS]
    for stage in ["stage2_simulate_rtf", "stage6_score_first_system_rtf",
                  "stage6_score_further_system_rtf", *metrics, "metrics_default_rtf",
                  "metrics_composite_rtf", "metrics_dnsmos_rtf"]:
        assert results[stage] > 0, stage
        assert f"| {stage} |" in printed
    assert results["metrics_default_rtf"] == sum(
        results[f"metric_{metric.name}_rtf"] for metric in SE_METRICS if metric.default)


def test_gpu_stages_benchmark_runs_tiny_on_cpu(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench_stages.main(["--device", "cpu", "--tiny", "--repeats", "1", "--utt_seconds", "1",
                              "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["tiny"] is True and results["device"] == "cpu"
    printed = capsys.readouterr().out
    for measure in ("stage3_rtf", "stage4_phase1_utts_per_s", "stage5_rtf",
                    "stage4_phase2_fp32_utts_per_s", "peak_rss_gb"):
        assert results[measure] > 0, measure
        assert f"| {measure} |" in printed
    assert "stage4_phase2_bf16_utts_per_s" not in results  # ESPnet's autocast is CUDA-only


def test_inference_benchmark_reports_start_up_rtf_and_memory(tiny_model, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench_inference.main(["--model", str(tiny_model), "--repeats", "1", "--short_minutes",
                                 "0.02", "--long_minutes", "0.05", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    printed = capsys.readouterr().out
    for measure in ("first_result_s_espnet_imports", "first_result_s", "first_result_speedup",
                    "rtf_0.02min", "peak_rss_mb_0.02min", "rtf_0.05min", "peak_rss_mb_0.05min",
                    "peak_rss_ratio"):
        assert results[measure] > 0, measure
        assert f"| {measure} |" in printed
