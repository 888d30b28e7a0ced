"""MeritModel built by MeritTask: shapes, online s3prl upstreams, overfitting a batch."""
import numpy as np
import pytest
import torch

from fake_corpora import speechlike
from merit.bin import compose_config
from merit.tasks.merit_task import MeritTask
from tiny_wavlm import make_tiny_wavlm

SMALL = ["--moe_conf", "hidden_size=64", "--moe_conf", "output_size=32",
         "--se_head_conf", "linear_size=32", "--se_head_conf", "blstm_size=32",
         "--ser_head_conf", "hidden_size=64", "--ser_head_conf", "attention_size=16"]


def build(*options):
    args = MeritTask.get_parser().parse_args([*SMALL, *options])
    return MeritTask.build_model(args), args


def batch(n=4, seed=0, samples=16000):
    """Noisy/clean pairs of different lengths, and one emotion class each."""
    rng = np.random.default_rng(seed)
    lengths = [samples - samples // 7 * (i % 4) for i in range(n)]
    clean = torch.zeros(n, max(lengths))
    for i, length in enumerate(lengths):
        clean[i, :length] = torch.from_numpy(speechlike(length / 16000, 100 + 30 * i, i))
    noise = torch.from_numpy(rng.standard_normal(clean.shape).astype(np.float32)) * 0.05
    lens = torch.tensor(lengths)
    noisy = (clean + noise) * (torch.arange(clean.shape[1])[None] < lens[:, None])
    return dict(speech=noisy, speech_lengths=lens, speech_ref1=clean, speech_ref1_lengths=lens,
                emotion=torch.arange(n)[:, None] % 4)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    return make_tiny_wavlm(tmp_path_factory.mktemp("wavlm") / "tiny_wavlm.pt")


@pytest.mark.parametrize("upstream, hop", [("fbank", 160), ("wavlm_local", 320)])
def test_shapes_for_10ms_and_20ms_upstreams(upstream, hop, tiny_ckpt):
    conf = ["--frontend_conf", f"upstream={upstream}"]
    if upstream == "wavlm_local":
        conf += ["--frontend_conf", f"path_or_url={tiny_ckpt}"]
    model, _ = build("--frontend", "s3prl", *conf)
    assert model.frontend.downsample_rate == hop
    assert (model.se_head.ssl_hop, model.se_head.ssl_offset) == (hop, 200)
    data = batch()
    features, lengths, _ = model.encode(data["speech"], data["speech_lengths"])
    assert features["se"].shape[:2] == features["ser"].shape[:2]
    assert features["se"].shape[1] == pytest.approx(16000 / hop, abs=2)
    se_out = model.se_head(features["se"], lengths, data["speech"], data["speech_lengths"])
    assert se_out.enhanced_logmag.shape[1] == 1 + 16000 // 160
    assert se_out.frame_lengths.tolist() == [1 + n // 160 for n in data["speech_lengths"].tolist()]
    assert model.se_head.enhance(se_out).shape == data["speech"].shape
    loss, stats, weight = model(**data)
    assert torch.isfinite(loss) and int(weight) == 4
    for key in ("loss", "loss_ser", "loss_se", "loss_balance", "acc", "se_expert0", "ser_expert2"):
        assert key in stats


def test_tiny_wavlm_trains_one_step_fine_tuned(tiny_ckpt):
    model, args = build("--frontend", "s3prl", "--frontend_conf", "upstream=wavlm_local",
                        "--frontend_conf", f"path_or_url={tiny_ckpt}", "--frontend_conf", "freeze=false",
                        "--optim", "adamw", "--optim_conf", "lr=0.001")
    assert model.frontend.num_layers == 3  # CNN output + 2 transformer layers
    assert model.integration.output_size == 3 * 32
    (optimizer,) = MeritTask.build_optimizers(args, model)
    assert [g["lr"] for g in optimizer.param_groups] == [0.001, 0.0005]
    before = {n: p.detach().clone() for n, p in model.frontend.named_parameters()}
    loss, _, _ = model(**batch())
    loss.backward()
    optimizer.step()
    changed = {n for n, p in model.frontend.named_parameters() if not torch.equal(p, before[n])}
    assert any(".encoder.layers." in n for n in changed)
    assert not any(".feature_extractor." in n for n in changed)  # the CNN stays frozen


def test_frozen_upstream_gets_no_gradient(tiny_ckpt):
    model, args = build("--frontend", "s3prl", "--frontend_conf", "upstream=wavlm_local",
                        "--frontend_conf", f"path_or_url={tiny_ckpt}")
    loss, _, _ = model(**batch())
    loss.backward()
    assert all(p.grad is None for p in model.frontend.parameters())
    assert model.moe.gates["ser"].weight.grad.abs().sum() > 0


def test_overfits_a_batch_of_eight():
    torch.manual_seed(0)
    model, _ = build("--frontend", "s3prl", "--frontend_conf", "upstream=fbank",
                     "--ser_head_conf", "dropout=0.1")
    data = batch(8, samples=8000)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    first_se = None
    for step in range(60):
        model.train()
        loss, stats, _ = model(**data)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if first_se is None:
            first_se = float(stats["loss_se"])
    model.eval()
    with torch.no_grad():
        _, stats, _ = model(**data)
    assert float(stats["acc"]) == 1.0
    assert float(stats["loss_se"]) < 0.5 * first_se


@pytest.mark.parametrize("moe", ["dense", "shared"])
def test_dense_and_shared_variants_run(moe):
    model, _ = build("--frontend", "s3prl", "--frontend_conf", "upstream=fbank", "--moe", moe)
    loss, stats, _ = model(**batch())
    loss.backward()
    assert torch.isfinite(loss)


@pytest.mark.parametrize("drop, kept", [("--se_head", "ser"), ("--ser_head", "se")])
def test_single_task_systems(drop, kept):
    model, _ = build("--frontend", "s3prl", "--frontend_conf", "upstream=fbank", "--moe", "shared",
                     drop, "none")
    data = batch()
    if kept == "se":
        data.pop("emotion")
    else:
        data.pop("speech_ref1")
    loss, stats, _ = model(**data)
    assert ("loss_ser" in stats) == (kept == "ser") and ("loss_se" in stats) == (kept == "se")
    assert list(model.moe.tasks) == [kept]


# what each shipped system must be: (moe, tasks)
SYSTEMS = {"sparse_merit": ("sparse", ["se", "ser"]), "dense_merit": ("dense", ["se", "ser"]),
           "naive_mtl": ("shared", ["se", "ser"]), "ser_only": ("shared", ["ser"]),
           "se_only": ("shared", ["se"])}


@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_shipped_system_configs_build_and_learn(system, repo, tmp_path):
    config = tmp_path / "train_config.yaml"
    assert compose_config.main([str(repo / "egs/mini_emo/merit/conf/train.yaml"),
                                str(repo / f"egs/TEMPLATE/merit/conf/systems/{system}.yaml"),
                                "--out", str(config)]) == 0
    args = MeritTask.get_parser().parse_args(["--config", str(config), "--frontend", "s3prl",
                                              "--frontend_conf", "upstream=fbank"])
    model = MeritTask.build_model(args)
    moe, tasks = SYSTEMS[system]
    assert args.moe == moe and list(model.moe.tasks) == tasks
    loss, stats, _ = model(**batch())
    loss.backward()
    assert torch.isfinite(loss) and ("loss_se" in stats) == ("se" in tasks)
    assert ("loss_ser" in stats) == ("ser" in tasks)
