"""Mutation check: does the test suite notice realistic bugs?

    tools/venv/bin/python test/mutation_check.py                  # every mutation
    tools/venv/bin/python test/mutation_check.py --only NAME ...  # some of them
    tools/venv/bin/python test/mutation_check.py --list           # the declarations
    tools/venv/bin/python test/mutation_check.py --baseline       # their tests, unmutated

Each mutation below is one small, realistic bug (swapped arguments, a dropped term, an
input returned as the output, an off-by-one, a wrong checkpoint or set) in one file,
with the tests expected to catch it. For each, the repository (tracked and untracked,
not ignored files, so no tools/venv, data/, dump/ or exp/; symlinks kept as symlinks)
is copied into a scratch dir, the bug is put in, and ``pytest -x`` runs the named tests
there with ``PYTHONPATH`` set to the copy, so ``import merit`` (also in the processes
that tests and recipe scripts start) is the mutated copy, not the editable install.

pytest exiting 1 (a test failed) means the mutation was killed; 0 means it survived;
anything else (collection error, missing test file) is an error. One line is printed
per mutation as it finishes (name, area, outcome, first failing test, seconds), then a
markdown table and the total time. The exit status is 0 only if every mutation was
killed (with ``--baseline``: if the named tests pass on the unmutated copy); 2 when an
``old`` snippet no longer occurs exactly once in its file (the list went stale).

Not part of the test suite: pytest collects only ``test_*.py`` files.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
PYTEST_TIMEOUT_S = 1800


@dataclass(frozen=True)
class Mutation:
    name: str
    area: str
    file: str  # relative to the repository root
    edits: Tuple[Tuple[str, str], ...]  # (old, new); each old occurs exactly once in file
    tests: Tuple[str, ...]  # pytest node ids expected to kill it


MUTATIONS = [
    Mutation(
        "routing_topk_skips_best", "routing", "merit/models/moe.py",
        (("top_prob, top_idx = probs.topk(self.top_k, dim=-1)",
          "top_prob, top_idx = [t[:, 1:] for t in probs.topk(self.top_k + 1, dim=-1)]"),),
        ("test/test_moe.py",)),
    Mutation(
        "routing_gates_swapped", "routing", "merit/models/moe.py",
        (("probs = self._gate(task, xv)",
          "probs = self._gate(self.tasks[-1 - self.tasks.index(task)], xv)"),),
        ("test/test_moe.py",)),
    Mutation(
        "loss_balance_dropped", "loss", "merit/models/espnet_model.py",
        (("loss = moe_out.balance_loss\n", "loss = 0 * moe_out.balance_loss\n"),),
        ("test/test_loss_composition.py",)),
    Mutation(
        "loss_class_weights_dropped", "loss", "merit/tasks/task_specs.py",
        (("F.cross_entropy(logits, target, weight=class_weights)",
          "F.cross_entropy(logits, target)"),),
        ("test/test_loss_composition.py",)),
    Mutation(
        "loss_se_weight_ignored", "loss", "merit/models/espnet_model.py",
        (("loss = loss + self.loss_weights[task.name] * part.loss",
          "loss = loss + (self.loss_weights[task.name] if task.name != \"se\" else 1) * part.loss"),),
        ("test/test_loss_composition.py",)),
    Mutation(
        "se_mask_not_applied", "se_head", "merit/models/se_head.py",
        (("enhanced_logmag=self.apply_mask(mask, noisy_logmag),", "enhanced_logmag=noisy_logmag,"),),
        ("test/test_heads.py",)),
    Mutation(
        "decode_enhanced_is_noisy", "decoding", "merit/tasks/task_specs.py",
        (("enhanced = head.enhance(head(features, lengths, speech, speech_lengths)).cpu().numpy()",
          "enhanced = speech.cpu().numpy()"),),
        ("test/test_decode_matches_forward.py",)),
    Mutation(
        "decode_hyp_class_shifted", "decoding", "merit/tasks/task_specs.py",
        (("classes[int(np.argmax(output))]",
          "classes[int(np.argmax(output)) - 1]"),),
        ("test/test_decode_matches_forward.py",)),
    Mutation(
        "scoring_hyp_is_ref", "scoring", "merit/bin/score.py",
        (("[index[hyp[u]] for u in utts]", "[index[ref[u]] for u in utts]"),),
        ("test/test_score_known_answer.py",)),
    Mutation(
        "scoring_confusion_transposed", "scoring", "merit/bin/score.py",
        (("confusion_matrix([index[ref[u]] for u in utts], [index[hyp[u]] for u in utts],",
          "confusion_matrix([index[hyp[u]] for u in utts], [index[ref[u]] for u in utts],"),),
        ("test/test_score_known_answer.py",)),
    Mutation(
        "metrics_macro_f1_is_micro", "metrics", "merit/metrics/classification.py",
        (("return _value(per_class_f1(confusion).mean(axis=-1))",
          "return accuracy(confusion)"),),
        ("test/test_metrics_classification.py",)),
    Mutation(
        "metrics_ssnr_energy_of_estimate", "metrics", "merit/metrics/se.py",
        (("sliding_window_view(ref, frame)", "sliding_window_view(est, frame)"),),
        ("test/test_metrics_se.py",)),
    Mutation(
        "metrics_ssnr_clip_range", "metrics", "merit/metrics/se.py",
        (("min_db: float = -10, max_db: float = 35", "min_db: float = -10, max_db: float = 30"),),
        ("test/test_metrics_se.py",)),
    Mutation(
        "significance_one_sided", "significance", "merit/metrics/significance.py",
        (("observed = abs(float(score(a[None, :])[0]) - float(score(b[None, :])[0]))",
          "observed = float(score(a[None, :])[0]) - float(score(b[None, :])[0])"),
         ("difference = np.abs(score(shuffled_a) - score(shuffled_b))",
          "difference = score(shuffled_a) - score(shuffled_b)")),
        ("test/test_significance.py",)),
    Mutation(
        "tables_relative_to_wrong_system", "tables", "merit/bin/make_tables.py",
        (("/ abs(np.mean(theirs)) * 100", "/ abs(np.mean(mine)) * 100"),),
        ("test/test_make_tables.py",)),
    Mutation(
        "tables_std_ddof0", "tables", "merit/bin/make_tables.py",
        (("np.std(values, ddof=1)", "np.std(values)"),),
        ("test/test_make_tables.py",)),
    Mutation(
        "tables_test_first_seed_only", "tables", "merit/bin/make_tables.py",
        (("pairs = [p for p in pairs if name in p[1] and name in p[2]]",
          "pairs = [p for p in pairs if name in p[1] and name in p[2]][:1]"),),
        ("test/test_make_tables.py",)),
    Mutation(
        "tables_abs_delta_swapped", "tables", "merit/bin/make_tables.py",
        (("difference = np.mean(mine) - np.mean(theirs)",
          "difference = np.mean(theirs) - np.mean(mine)"),),
        ("test/test_make_tables.py",)),
    Mutation(
        "significance_holm_not_monotone", "significance", "merit/metrics/significance.py",
        (("stepped = np.maximum.accumulate((m - np.arange(m)) * p[made][order])",
          "stepped = (m - np.arange(m)) * p[made][order]"),),
        ("test/test_significance.py",)),
    Mutation(
        "significance_wilcoxon_pools_seeds", "significance", "merit/metrics/significance.py",
        (("return wilcoxon_signed_rank(mean_a, mean_b)",
          "return wilcoxon_signed_rank(np.where(both, a, np.nan), np.where(both, b, np.nan))"),),
        ("test/test_significance.py",)),
    Mutation(
        "noise_snr_off_by_1db", "noise_mixing", "merit/data/noise_mixing.py",
        (("10.0 ** (snr_db / 10.0)", "10.0 ** ((snr_db + 1) / 10.0)"),),
        ("test/test_simulate_noise.py",)),
    Mutation(
        "data_prep_labels_swapped", "data_prep", "merit/data/msp_podcast.py",
        (('files["utt2emo"][utt] = emo',
          'files["utt2emo"][utt] = {"A": "S", "S": "A"}.get(emo, emo)'),),
        ("test/test_msp_podcast_prep.py",)),
    Mutation(
        "data_prep_splits_swapped", "data_prep", "merit/data/msp_podcast.py",
        (('"Development": "dev", "Test1": "test1",', '"Development": "test1", "Test1": "dev",'),),
        ("test/test_msp_podcast_prep.py",)),
    Mutation(
        "merit_sh_other_criterion_checkpoint", "merit.sh", "merit/utils/best_checkpoint.py",
        (("phase, metric = criteria[0][:2]", "phase, metric = criteria[-1][:2]"),),
        ("test/test_merit_sh_stage_choices.py",)),
    Mutation(
        "merit_sh_decode_clean_sets", "merit.sh", "egs/TEMPLATE/merit/merit.sh",
        (('    for dset in ${test_sims}; do\n        echo "${dset} data/${dset}',
          '    for dset in ${test_sets}; do\n        echo "${dset} data/${dset}'),),
        ("test/test_merit_sh_stage_choices.py",)),
    Mutation(
        "merit_sh_clean_classifier_on_noisy", "merit.sh", "egs/TEMPLATE/merit/merit.sh",
        (('train_model "${model}" "${seed}" "data/${train_set}_clean"',
          'train_model "${model}" "${seed}" "data/${train_sim}"'),),
        ("test/test_merit_sh_stage_choices.py",)),
    Mutation(
        "merit_sh_init_from_dropped", "merit.sh", "egs/TEMPLATE/merit/merit.sh",
        (('args+=" --init_param ${init}"', 'args+=""'),),
        ("test/test_merit_sh_stage_choices.py",)),
    Mutation(
        "merit_sh_score_clean_sets", "merit.sh", "egs/TEMPLATE/merit/merit.sh",
        (('    for dset in ${test_sims}; do\n        dec=${exp}/decode_${dset}',
          '    for dset in ${test_sets}; do\n        dec=${exp}/decode_${dset}'),),
        ("test/test_recipe_template.py::test_scoring_without_decoding_names_the_missing_files",
         "test/test_merit_sh_stage_choices.py")),
    Mutation(
        "fingerprint_ignores_listed_files", "stale", "merit/utils/fingerprint.py",
        (("            digest.update((stat + \"\\n\").encode())",
          "            pass"),),
        ("test/test_fingerprint.py",)),
    Mutation(
        "merit_sh_markers_without_inputs", "stale", "egs/TEMPLATE/merit/merit.sh",
        (('[ $# -eq 0 ] || python3 -m merit.utils.fingerprint "$@"', "true"),),
        ("test/test_merit_sh_stage_choices.py::test_stage5_decodes_again_only_the_sets_whose_data_changed",
         "test/test_recipe_template.py::test_new_corpus_reaches_stage_6_as_the_readme_says")),
    Mutation(
        "merit_sh_decode_key_without_test_data", "stale", "egs/TEMPLATE/merit/merit.sh",
        (('key=$(step_key "${model}" "$2" ${feats:+"${feats}"})', 'key=$(step_key "${model}")'),),
        ("test/test_merit_sh_stage_choices.py::test_stage5_decodes_again_only_the_sets_whose_data_changed",)),
    Mutation(
        "mini_emo_render_key_ignores_speech", "stale", "merit/data/mini_emo.py",
        (("            digest.update(f\"{speaker}/{path.name} {stat.st_size} {stat.st_mtime_ns}\\n\".encode())",
          "            pass"),),
        ("test/test_mini_emo_recipe.py::test_rendering_is_byte_identical",)),
    Mutation(
        "data_prep_leak_across_splits", "data_prep", "merit/data/msp_podcast.py",
        (("        if split0 != split:\n            across.append(",
          "        if False:\n            across.append("),),
        ("test/test_msp_podcast_prep.py",)),
    Mutation(
        "pooling_std_by_moments", "precision", "merit/models/ser_head.py",
        (('variance = torch.einsum("bt,btf->bf", weights, deviation * deviation)',
          'variance = torch.einsum("bt,btf->bf", weights, x * x) - mean * mean'),),
        ("test/test_autocast_precision.py",)),
    Mutation(
        "gate_softmax_in_autocast_dtype", "precision", "merit/models/moe.py",
        (("        with torch.autocast(device_type=xv.device.type, enabled=False):\n"
          "            logits = torch.nn.functional.linear(xv.to(dtype), gate.weight.to(dtype),\n"
          "                                                gate.bias.to(dtype))\n"
          "            return torch.softmax(logits, dim=-1)",
          "        return torch.softmax(gate(xv), dim=-1)"),),
        ("test/test_autocast_precision.py",)),
    Mutation(
        "se_alignment_ignores_frame_offset", "se_head", "merit/models/se_head.py",
        (("return torch.div(2 * (n * self.hop_length - self.ssl_offset) + self.ssl_hop,",
          "return torch.div(2 * (n * self.hop_length) + self.ssl_hop,"),),
        ("test/test_se_alignment.py",)),
    Mutation(
        "se_magnitude_mask_on_log1p", "se_head", "merit/models/se_head.py",
        (("        return torch.log1p(mask * torch.expm1(noisy_logmag))",
          "        return mask * noisy_logmag"),),
        ("test/test_se_alignment.py",)),
    Mutation(
        "frontend_offset_whole_field", "frontend", "merit/models/frontend.py",
        (("            return field // 2", "            return field"),),
        ("test/test_merit_model.py::test_shapes_for_10ms_and_20ms_upstreams",)),
    Mutation(
        "dynamic_mixing_same_every_epoch", "data", "merit/data/dynamic_mixing.py",
        (("utterance_rng(uid, self.seed, self.epoch)", "utterance_rng(uid, self.seed)"),),
        ("test/test_dynamic_mixing.py",)),
    Mutation(
        "dynamic_mixing_clean_without_gain", "data", "merit/data/dynamic_mixing.py",
        (("        data[CLEAN] = draw.mixture.clean.astype(np.float32)",
          "        data[CLEAN] = clean"),),
        ("test/test_dynamic_mixing.py",)),
    Mutation(
        "ddp_weight_0d", "distributed", "merit/models/espnet_model.py",
        (("loss, stats, weight = force_gatherable((loss, stats, speech.shape[0]), loss.device)",
          "weight = torch.tensor(speech.shape[0], device=loss.device)"),),
        ("test/test_distributed.py",)),
    Mutation(
        "oracle_noisy_and_clean_swapped", "scoring", "merit/bin/score.py",
        (("_worker_head.oracle_outputs(torch.from_numpy(noisy)[None],\n"
          "                                              torch.from_numpy(clean)[None], lengths)",
          "_worker_head.oracle_outputs(torch.from_numpy(clean)[None],\n"
          "                                              torch.from_numpy(noisy)[None], lengths)"),),
        ("test/test_oracle_scores.py",)),
    Mutation(
        "oracle_cache_ignores_mtime", "stale", "merit/bin/score.py",
        (("found[u][0] == stamps[u]]", "found[u][0][0] == stamps[u][0]]"),),
        ("test/test_oracle_scores.py::test_the_oracle_cache_is_reused_and_a_rewritten_file_recomputed",)),
    Mutation(
        "tables_oracle_families_merged", "tables", "merit/bin/make_tables.py",
        (("key = json.dumps(settings, sort_keys=True)", 'key = ""'),),
        ("test/test_make_tables.py",)),
    Mutation(
        "merit_sh_score_key_without_oracle", "stale", "egs/TEMPLATE/merit/merit.sh",
        (('key="$(cat "${dec}/decode.done")"$\'\\n\'"oracle_config ${config}"',
          'key="$(cat "${dec}/decode.done")"'),),
        ("test/test_merit_sh_stage_choices.py::test_stage6_scores_again_sets_scored_before_the_oracles",)),
    Mutation(
        "run_pl_jobs_obey_omp_threads", "jobs", "utils/run.pl",
        (("    delete local @ENV{qw(OMP_NUM_THREADS OMP_THREAD_LIMIT)};\n", ""),),
        ("test/test_run_pl.py",)),
    Mutation(
        "stage3_dumps_for_remixed_models", "stale", "egs/TEMPLATE/merit/merit.sh",
        (("grep -qx 'dynamic_mixing: true' \"${merged}\" || status=1", "true"),),
        ("test/test_merit_sh_dynamic_mixing.py",)),
    Mutation(
        "score_caches_filled_with_the_wrong_head", "scoring", "egs/TEMPLATE/merit/merit.sh",
        (('[ "${system}" = cascade ] && system=se_only  # its enhancer', 'system=ser_only'),),
        ("test/test_merit_sh_stage_choices.py",)),
    Mutation(
        "joint_score_adds_the_log", "training", "merit/tasks/merit_trainer.py",
        (("return f1 - math.log(loss_se)", "return f1 + math.log(loss_se)"),),
        ("test/test_merit_training.py::test_joint_score_is_dev_macro_f1_minus_ln_dev_se_loss",)),
    Mutation(
        "train_wipes_a_model_whose_inputs_are_gone", "stale", "egs/TEMPLATE/merit/merit.sh",
        (('if ! missing=$(python3 -m merit.utils.fingerprint --missing "${inputs[@]}"); then',
          "if false; then"),),
        ("test/test_merit_sh_dynamic_mixing.py",)),
    Mutation(
        "stoi_resample_cache_by_length", "scoring", "merit/metrics/se.py",
        (("key = (hashlib.sha1(signal.tobytes()).digest(), signal.shape[0], fs, rate)",
          "key = (signal.shape[0], fs, rate)"),),
        ("test/test_metrics_se.py",)),
    Mutation(
        "composite_csig_drops_wss", "metrics", "merit/metrics/composite.py",
        (("return _rating(3.093 - 1.029 * llr + 0.603 * pesq - 0.009 * wss)",
          "return _rating(3.093 - 1.029 * llr + 0.603 * pesq)"),),
        ("test/test_metrics_composite.py",)),
    Mutation(
        "composite_llr_reference_swapped", "metrics", "merit/metrics/composite.py",
        (("    ref, est = signal_pair(clean, estimate)\n    frame, hop = frame_geometry(fs)\n"
          "    order = lpc_order(fs)",
          "    est, ref = signal_pair(clean, estimate)\n    frame, hop = frame_geometry(fs)\n"
          "    order = lpc_order(fs)"),),
        ("test/test_metrics_composite.py",)),
    Mutation(
        "composite_wss_peak_band_off_by_one", "metrics", "merit/metrics/composite.py",
        (("peak = np.where(rising, next_non_rising - 1, last_rising + 1)",
          "peak = np.where(rising, next_non_rising, last_rising + 1)"),),
        ("test/test_metrics_composite.py",)),
    Mutation(
        "dnsmos_outputs_misread", "metrics", "merit/metrics/dnsmos.py",
        (("PARTS = tuple(POLYNOMIALS)", "PARTS = (\"bak\", \"sig\", \"ovrl\")"),),
        ("test/test_metrics_dnsmos.py",)),
    Mutation(
        "scoring_clean_part_scores_noisy", "scoring", "merit/bin/score.py",
        (("reference_free_scores(clean, metrics=metrics)",
          "reference_free_scores(read_audio(noisy_path), metrics=metrics)"),),
        ("test/test_score_noisy_cache.py",)),
    Mutation(
        "report_player_names_an_uncopied_duplicate", "report", "merit/bin/make_report.py",
        (('preload="metadata" src="{src(used)}">', 'preload="metadata" src="{src(rel)}">'),),
        ("test/test_make_report.py::test_every_source_is_a_file_copied_into_the_report",)),
    Mutation(
        "report_duration_script_throws", "report", "merit/bin/make_report.py",
        (("audio.dataset.duration = audio.duration.toFixed(2);",
          "audio.dataset.duration = audio.durations.toFixed(2);"),),
        ("test/test_report_browser.py::test_every_player_reports_a_duration_and_nothing_is_logged",)),
    Mutation(
        "merit_sh_score_key_without_metrics", "merit.sh", "egs/TEMPLATE/merit/merit.sh",
        (('''"oracle_config ${config}"$'\\n'"metrics ${scored_metrics}"''', '''"oracle_config ${config}"'''),),
        ("test/test_merit_sh_stage_choices.py::test_stage6_scores_again_when_the_metric_set_changes",)),
    Mutation(
        "model_loading_unpickles_anything", "inference", "merit/utils/model_loading.py",
        (("torch.load(weights, map_location=device, weights_only=True)",
          "torch.load(weights, map_location=device, weights_only=False)"),),
        ("test/test_safe_model_loading.py",)),
    Mutation(
        "model_loading_ignores_missing_weights", "inference", "merit/utils/model_loading.py",
        (("    if missing or unexpected:\n", "    if unexpected:\n"),),
        ("test/test_safe_model_loading.py",)),
    Mutation(
        "lazy_hub_always_runs_the_real_hub", "inference", "merit/compat.py",
        (("            if source != _RUN_HUB:\n", "            if False:\n"),),
        ("test/test_compat.py::test_lazy_hub_imports_only_the_family_of_the_entry",)),
    Mutation(
        "lazy_hub_ignores_star_imports", "inference", "merit/compat.py",
        (("                    bound.update(public_of(node.module))\n",
          "                    pass\n"),),
        ("test/test_compat.py",)),
    Mutation(
        "infer_exit_zero_despite_failures", "inference", "merit/bin/merit_infer.py",
        (("    if not failures:\n        return 0\n", "    if True:\n        return 0\n"),),
        ("test/test_merit_infer_batch.py",)),
    Mutation(
        "infer_enhanced_named_by_input_name", "inference", "merit/bin/merit_infer.py",
        (('return self.out_dir / "enhanced" / item.relpath',
          'return self.out_dir / "enhanced" / Path(item.name).name'),),
        ("test/test_merit_infer_batch.py",)),
    Mutation(
        "scp_utterance_id_loses_dotted_part", "inference", "merit/data/audio_inputs.py",
        (('PurePath(f"{utt}.wav")', 'PurePath(utt).with_suffix(".wav")'),),
        ("test/test_audio_inputs.py",)),
    Mutation(
        "progress_eta_from_total_not_remaining", "inference", "merit/utils/progress.py",
        (("(self.total_seconds - self.seconds)", "self.total_seconds"),),
        ("test/test_audio_inputs.py",)),
    Mutation(
        "long_audio_hard_switch_between_windows", "inference", "merit/long_audio.py",
        (("weight = 0.5 - 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)",
          "weight = (np.arange(fade) >= fade // 2).astype(np.float64)"),),
        ("test/test_long_audio.py",)),
    Mutation(
        "pack_member_escapes_the_target", "inference", "merit/pack.py",
        (('or ".." in path.parts\n', 'or False\n'),),
        ("test/test_pack.py",)),
    Mutation(
        "metrics_uar_over_absent_classes_too", "metrics", "merit/metrics/classification.py",
        (("    count = present.sum(axis=-1)\n", "    count = present.shape[-1]\n"),),
        ("test/test_metrics_classification.py", "test/test_significance.py")),
    Mutation(
        "inference_builds_through_espnet_task", "inference", "merit/utils/model_loading.py",
        (("from merit.tasks.model_builder import build_model\n",
          "from merit.tasks.merit_task import MeritTask\nbuild_model = MeritTask.build_model\n"),),
        ("test/test_inference_start_up.py",)),
    Mutation(
        "batch_results_in_length_order", "decoding", "merit/inference.py",
        (("        speech = [torch.as_tensor(wave, dtype=torch.float32, device=self.device) for wave in noisy]\n",
          "        order = sorted(range(len(noisy)), key=lambda i: -len(noisy[i]))\n"
          "        noisy, feats = [noisy[i] for i in order], [feats[i] for i in order]\n"
          "        speech = [torch.as_tensor(wave, dtype=torch.float32, device=self.device) for wave in noisy]\n"),),
        ("test/test_batched_decoding.py",)),
    Mutation(
        "batch_expert_usage_of_the_whole_batch", "decoding", "merit/inference.py",
        (("        usage = expert_usage(moe_out, lengths)\n",
          "        usage = {t: np.stack([f.cpu().numpy()] * len(speech))\n"
          "                 for t, f in moe_out.expert_fraction.items()}\n"),),
        ("test/test_batched_decoding.py",)),
    Mutation(
        "decode_batch_bound_from_the_shortest", "decoding", "merit/batching.py",
        (("(len(batches[-1]) + 1) * lengths[batches[-1][0]] <= max_samples",
          "(len(batches[-1]) + 1) * lengths[utt] <= max_samples"),),
        ("test/test_batched_decoding.py::test_length_batches_keep_the_bound_and_every_utterance_once",)),
    Mutation(
        "online_features_not_rounded_as_dumped", "decoding", "merit/models/frontend.py",
        (("        return hidden.to(getattr(torch, self.dtype))\n", "        return hidden\n"),),
        ("test/test_test_features_online.py::test_decoding_with_and_without_the_dump_writes_the_same_files",
         "test/test_batched_decoding.py::test_a_batch_with_dumped_feats_gives_what_online_features_give")),
    Mutation(
        "stage3_dumps_test_sets_by_default", "stale", "egs/TEMPLATE/merit/merit.sh",
        (('        if [ "${dump_test_sets}" = true ]; then\n            for dset in ${test_sims}; do',
          '        if true; then\n            for dset in ${test_sims}; do'),),
        ("test/test_test_features_online.py::test_stage3_dumps_the_test_sets_only_when_asked",)),
    Mutation(
        "cascade_dumps_enhanced_test_sets", "merit.sh", "egs/TEMPLATE/merit/merit.sh",
        (('        if [ "${ssl_mode}" = online ] || computed_while_decoding "${dset}"; then\n',
          '        if [ "${ssl_mode}" = online ]; then\n'),),
        ("test/test_test_features_online.py",)),
    Mutation(
        "peak_memory_carries_the_parents_size", "inference", "merit/utils/peak_memory.py",
        (("    kib = max(kib, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n",
          "    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"),),
        ("test/test_peak_memory.py",)),
    Mutation(
        "tables_keep_dash_columns", "tables", "merit/bin/make_tables.py",
        (("            sets = sets or splits[test]\n", "            sets = splits[test]\n"),),
        ("test/test_make_tables.py",)),
    Mutation(
        "tables_no_std_note_without_baselines", "tables", "merit/bin/make_tables.py",
        (("    if seeded:\n        notes.append(f\"Multi-seed", "    if seeded and compared:\n        notes.append(f\"Multi-seed"),),
        ("test/test_make_tables.py",)),
    Mutation(
        "preflight_enhanced_counts_no_wav", "merit.sh", "merit/bin/disk_preflight.py",
        (("        sizes = [audio_bytes(item.samples, 1) for item in sets]\n",
          "        sizes = [audio_bytes(item.samples, 0) for item in sets]\n"),),
        ("test/test_disk_preflight.py",)),
    Mutation(
        "inputs_allow_colliding_outputs", "inference", "merit/data/audio_inputs.py",
        (("        if owner != item.path:\n", "        if False:\n"),),
        ("test/test_audio_inputs.py",)),
    Mutation(
        "se_head_decodes_with_the_packed_blstm", "decoding", "merit/models/se_head.py",
        (("        if self.training:\n            packed", "        if True:\n            packed"),),
        ("test/test_batched_decoding.py",)),
    Mutation(
        "batch_invariant_blstm_one_row", "decoding", "merit/models/batch_invariant_lstm.py",
        (("MIN_ROWS = 4\n", "MIN_ROWS = 1\n"),),
        ("test/test_batch_invariant_lstm.py", "test/test_batched_decoding.py")),
    Mutation(
        "batch_invariant_blstm_reverses_the_padding_too", "models",
        "merit/models/batch_invariant_lstm.py",
        (("    source = torch.where(steps < lengths, lengths - 1 - steps, steps)\n",
          "    source = (x.size(1) - 1 - steps).expand(len(lengths), -1)\n"),),
        ("test/test_batch_invariant_lstm.py",)),
    Mutation(
        "ser_infer_classifies_the_padded_batch", "decoding", "merit/tasks/task_specs.py",
        (("head(features[b:b + 1, :max(n, 1)], lengths[b:b + 1])", "head(features, lengths)[b:b + 1]"),),
        ("test/test_batched_decoding.py",)),
    Mutation(
        "decode_key_holds_the_batch_size", "stale", "egs/TEMPLATE/merit/merit.sh",
        (('    model="$(model_key "$1") $3"\n',
          '    model="$(model_key "$1") $3 decode_batch_size=${decode_batch_size}"\n'),),
        ("test/test_test_features_online.py::test_stage5_reads_test_features_only_when_they_were_dumped",)),
    Mutation(
        "cascade_dumps_enhanced_features_unchecked", "merit.sh", "egs/TEMPLATE/merit/merit.sh",
        (('        preflight_feats enhanced_feats "${se_exp}" "${todo[@]}"\n', ""),),
        ("test/test_test_features_online.py::test_a_cascades_enhanced_test_sets_are_dumped_only_when_asked",)),
    Mutation(
        "consecutive_batches_bound_from_the_newest", "decoding", "merit/batching.py",
        (("(len(batches[-1]) + 1) * max(longest, length) <= max_samples",
          "(len(batches[-1]) + 1) * length <= max_samples"),),
        ("test/test_batched_decoding.py::test_consecutive_batches_keep_the_order_and_the_bound",)),
    Mutation(
        "merit_infer_never_batches", "inference", "merit/bin/merit_infer.py",
        (("    if len(batch) < 2:\n        return {}\n", "    return {}\n"),),
        ("test/test_merit_infer_batch.py::test_files_inferred_together_give_the_same_bytes_as_one_at_a_time",)),
    Mutation(
        "merit_infer_hands_over_another_files_result", "inference", "merit/bin/merit_infer.py",
        (("            yield item, inferred.get(item)\n",
          "            yield item, inferred.get(batch[0])\n"),),
        ("test/test_merit_infer_batch.py::test_files_inferred_together_give_the_same_bytes_as_one_at_a_time",)),
]


@dataclass
class Outcome:
    status: str  # killed, survived, error (with --baseline: passed, failed, error)
    failing_test: str  # the first failed or errored test id, "" if none
    seconds: float
    output_tail: str  # the end of pytest's output, shown for errors


def stale_snippets(mutations: Sequence[Mutation]) -> List[str]:
    """One message per ``old`` snippet that does not occur exactly once in its file."""
    problems = []
    for m in mutations:
        text = (REPO / m.file).read_text()
        for old, _ in m.edits:
            count = text.count(old)
            if count != 1:
                problems.append(f"{m.name}: {m.file}: the old snippet occurs {count} times "
                                f"(expected once; update the declaration):\n{old}")
    return problems


def copy_repo(dest: Path) -> None:
    """Tracked and untracked, not ignored files of the working tree into ``dest``."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src, dst = REPO / rel, dest / rel
        if not src.is_symlink() and not src.exists():
            continue  # deleted in the working tree, not yet in git
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)


def apply(mutation: Mutation, root: Path) -> None:
    path = root / mutation.file
    text = path.read_text()
    for old, new in mutation.edits:
        if text.count(old) != 1:  # checked up front; the working tree changed since
            raise RuntimeError(f"{mutation.name}: {mutation.file} changed while the check "
                               f"ran; its old snippet no longer occurs once:\n{old}")
        text = text.replace(old, new, 1)
    path.write_text(text)


def scratch_env(root: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1"}


def check_isolation(root: Path, env: dict) -> Optional[str]:
    """None if ``import merit`` in ``root`` resolves to the copy, else what it resolved to."""
    res = subprocess.run([sys.executable, "-c", "import merit; print(merit.__file__)"],
                         cwd=root, env=env, capture_output=True, text=True)
    found = res.stdout.strip()
    if res.returncode == 0 and Path(found).resolve().is_relative_to(root.resolve()):
        return None
    return f"import merit resolved to {found or res.stderr.strip()!r}, not to {root}"


def run_tests(tests: Sequence[str], mutation: Optional[Mutation]) -> Outcome:
    """pytest on ``tests`` in a fresh copy of the repository, with ``mutation`` applied."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="merit_mutation_") as tmp:
        root = Path(tmp) / "repo"
        copy_repo(root)
        if mutation is not None:
            apply(mutation, root)
        env = scratch_env(root)
        problem = check_isolation(root, env)
        if problem:
            return Outcome("error", "", time.monotonic() - start, problem)
        cmd = [sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider"]
        cmd += ["-x"] if mutation is not None else []
        try:
            res = subprocess.run(cmd + list(tests), cwd=root, env=env, capture_output=True,
                                 text=True, timeout=PYTEST_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return Outcome("error", "", time.monotonic() - start,
                           f"pytest ran longer than {PYTEST_TIMEOUT_S} s")
    output = res.stdout + res.stderr
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", output, flags=re.MULTILINE)
    on_fail, on_pass = ("killed", "survived") if mutation is not None else ("failed", "passed")
    status = {1: on_fail, 0: on_pass}.get(res.returncode, "error")
    tail = "\n".join(output.rstrip().splitlines()[-30:])
    return Outcome(status, failed[0] if failed else "", time.monotonic() - start, tail)


def baseline_tests(mutations: Sequence[Mutation]) -> List[str]:
    """The union of the mutations' node ids, without tests their whole file already runs."""
    ids = list(dict.fromkeys(t for m in mutations for t in m.tests))
    files = {t for t in ids if "::" not in t}
    return [t for t in ids if "::" not in t or t.split("::")[0] not in files]


def print_list(mutations: Sequence[Mutation]) -> None:
    for m in mutations:
        print(f"{m.name}  [{m.area}]  {m.file}")
        print(f"  tests: {' '.join(m.tests)}")
        for old, new in m.edits:
            print("".join(f"  - {line}\n" for line in old.splitlines()), end="")
            print("".join(f"  + {line}\n" for line in new.splitlines()), end="")
        print()


def print_summary(rows: Sequence[Tuple[Mutation, Outcome]], total: float) -> None:
    print("\n| mutation | area | outcome | killed by | seconds |")
    print("|---|---|---|---|---|")
    for m, o in rows:
        print(f"| {m.name} | {m.area} | {o.status} | {o.failing_test or '-'} | {o.seconds:.0f} |")
    counts = {s: sum(o.status == s for _, o in rows) for s in ("killed", "survived", "error")}
    print(f"\n{counts['killed']} killed, {counts['survived']} survived, {counts['error']} "
          f"error(s) of {len(rows)} in {total:.0f} s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run these mutations only")
    parser.add_argument("--list", action="store_true", help="print the declarations and exit")
    parser.add_argument("--baseline", action="store_true",
                        help="run the selected mutations' tests once, unmutated")
    args = parser.parse_args(argv)
    by_name = {m.name: m for m in MUTATIONS}
    unknown = [n for n in args.only or [] if n not in by_name]
    if unknown:
        parser.error(f"unknown mutation(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
    selected = [by_name[n] for n in args.only] if args.only else MUTATIONS
    if args.list:
        print_list(selected)
        return 0
    stale = stale_snippets(selected)
    if stale:
        print("mutation_check: error: stale declarations\n" + "\n".join(stale), file=sys.stderr)
        return 2
    if args.baseline:
        tests = baseline_tests(selected)
        print(f"baseline: {' '.join(tests)}", flush=True)
        outcome = run_tests(tests, None)
        print(f"baseline {outcome.status} in {outcome.seconds:.0f} s"
              + (f" (first failure: {outcome.failing_test})" if outcome.failing_test else ""))
        if outcome.status != "passed":
            print(outcome.output_tail)
        return 0 if outcome.status == "passed" else 1
    start, rows = time.monotonic(), []
    for m in selected:
        outcome = run_tests(m.tests, m)
        rows.append((m, outcome))
        print(f"{m.name:<36} {m.area:<13} {outcome.status:<8} {outcome.failing_test or '-'} "
              f"{outcome.seconds:.0f} s", flush=True)
        if outcome.status == "error":
            print("    " + outcome.output_tail.replace("\n", "\n    "), flush=True)
    print_summary(rows, time.monotonic() - start)
    return 0 if all(o.status == "killed" for _, o in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
