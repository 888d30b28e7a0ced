"""The training loss is what the paper writes, term by term, computed here by hand:
ser_loss_weight · class-weighted CE + se_loss_weight (λ) · L1 of log1p magnitudes
+ balance_weight (α) · E · Σᵢ fᵢ·Pᵢ per gate; class weights N / (C · count_c)."""
import pytest
import torch

from merit.tasks.merit_task import MeritTask
from merit.tasks.model_builder import class_weights_from
from test_merit_model import batch

CLASS_WEIGHTS = [3.0, 1.5, 1.0, 0.5]
SER_WEIGHT, SE_WEIGHT, ALPHA = 1.3, 0.7, 0.05


def test_class_weights_are_n_over_c_times_count(tmp_path):
    counts = {"A": 1, "S": 2, "H": 3, "N": 6}  # N = 12, C = 4
    lines = [f"utt{c}{i} {c}" for c, n in counts.items() for i in range(n)]
    (tmp_path / "utt2emo").write_text("\n".join(lines) + "\n")
    assert class_weights_from(tmp_path / "utt2emo", ["A", "S", "H", "N"]) == CLASS_WEIGHTS
    assert class_weights_from(tmp_path / "utt2emo", ["N", "A", "S", "H"]) == [0.5, 3.0, 1.5, 1.0]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    args = MeritTask.get_parser().parse_args([
        "--frontend", "s3prl", "--frontend_conf", "upstream=fbank",
        "--moe_conf", "hidden_size=32", "--moe_conf", "output_size=16",
        "--moe_conf", f"balance_weight={ALPHA}",
        "--se_head_conf", "linear_size=16", "--se_head_conf", "blstm_size=16",
        "--ser_head_conf", "hidden_size=16", "--ser_head_conf", "attention_size=8",
        "--class_weights", ",".join(map(str, CLASS_WEIGHTS)),
        "--ser_loss_weight", str(SER_WEIGHT), "--se_loss_weight", str(SE_WEIGHT)])
    return MeritTask.build_model(args).eval()  # eval: no dropout, the same numbers twice


def log1p_magnitude(wave: torch.Tensor) -> torch.Tensor:
    """(S,) samples → (frames, 201) log1p |STFT|: n_fft 400, Hamming 400, hop 160, centred."""
    spec = torch.stft(wave, n_fft=400, hop_length=160, win_length=400,
                      window=torch.hamming_window(400), center=True, pad_mode="reflect",
                      return_complex=True)
    return torch.log1p(spec.abs()).T


def by_hand(model, data):
    """(CE, L1, balance) of one batch, from the model's intermediate outputs."""
    features, lengths, moe_out = model.encode(data["speech"], data["speech_lengths"])
    logits = model.ser_head(features["ser"], lengths)
    target = data["emotion"][:, 0]
    log_probs = torch.log_softmax(logits, dim=-1)
    weights = torch.tensor(CLASS_WEIGHTS)[target]
    ce = -(weights * log_probs[torch.arange(len(target)), target]).sum() / weights.sum()

    se_out = model.se_head(features["se"], lengths, data["speech"], data["speech_lengths"])
    total, bins = 0.0, 0
    for b, n in enumerate(data["speech_ref1_lengths"].tolist()):
        clean = log1p_magnitude(data["speech_ref1"][b, :n])
        total += (se_out.enhanced_logmag[b, :len(clean)] - clean).abs().sum()
        bins += clean.numel()
    l1 = total / bins

    balance = 0.0
    valid = torch.arange(features["se"].shape[1])[None] < lengths[:, None]
    for task in ("se", "ser"):
        probs = moe_out.gate_probs[task][valid]                       # (frames, E)
        top1 = moe_out.expert_index[task][valid][:, 0]                # (frames,)
        fraction = torch.bincount(top1, minlength=3).float() / len(top1)
        balance += ALPHA * 3 * (fraction * probs.mean(0)).sum()
    return ce, l1, balance


def test_loss_is_weighted_ce_plus_lambda_l1_plus_alpha_balance(model):
    data = batch(4)
    data["emotion"] = torch.tensor([[0], [1], [1], [3]])  # unequal weights in the batch
    with torch.no_grad():
        ce, l1, balance = by_hand(model, data)
        loss, stats, _ = model(**data)
    assert float(stats["loss_ser"]) == pytest.approx(float(ce), rel=1e-5)
    assert float(stats["loss_se"]) == pytest.approx(float(l1), rel=1e-5)
    assert float(stats["loss_balance"]) == pytest.approx(float(balance), rel=1e-5)
    expected = SER_WEIGHT * ce + SE_WEIGHT * l1 + balance
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    # every term matters at this size: none is below 1 % of the total
    assert min(SER_WEIGHT * ce, SE_WEIGHT * l1, balance) > 0.01 * expected
    assert float(balance) > 0

