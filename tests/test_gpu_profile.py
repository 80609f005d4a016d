"""The `gpu` profile, checked without a GPU: its config and teacher resolution, a bf16 teacher from a local folder, the accelerate configs, and the
Amazon 2023 download helper against a local HTTP server (download, checksums, truncation, interruption, offline reuse and the offline error)."""
import functools
import gzip
import hashlib
import json
import os
import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import pytest
import torch

from conftest import BIN, ROOT
from lwa.config import ConfigError, get_profile
from lwa.data import DataError, load_data, load_dataset
from lwa.hub import SUMS, DownloadError, amazon2023_urls, download_amazon2023, read_sums
from lwa.models import load_teacher, resolve_teacher, tiny_tokenizer

LLAMA3 = "meta-llama/Meta-Llama-3-8B-Instruct"
CAT = "Test_Cat"
REVIEWS, META = f"{CAT}.jsonl.gz", f"meta_{CAT}.jsonl.gz"


# ---------- config resolution ----------

def test_gpu_profile_fields_and_teacher_resolution(tmp_path):
    p = get_profile("gpu")
    assert (p.model.teacher, p.model.dtype, p.model.device, p.model.trust_remote_code) == ("llama3-8b", "bfloat16", "auto", False)
    assert p.data.dataset == "amazon2023:Office_Products"
    assert resolve_teacher(p.model.teacher, p.model.dtype, p.model.device) == dict(kind="hub", source=LLAMA3, dtype=torch.bfloat16, device_map="auto")
    assert resolve_teacher(p.model.teacher, p.model.dtype, "cuda:1")["device_map"] == {"": "cuda:1"}
    assert resolve_teacher(p.model.teacher, p.model.dtype, "cpu")["device_map"] is None
    # `-p teacher /local/folder`: the same profile with a local copy of the weights
    local = get_profile("gpu", {"model.teacher": str(tmp_path)})
    assert (local.model.teacher, local.model.dtype, local.model.device) == (str(tmp_path), "bfloat16", "auto")
    assert resolve_teacher(local.model.teacher, local.model.dtype, local.model.device) == dict(kind="local", source=str(tmp_path),
                                                                                              dtype=torch.bfloat16, device_map="auto")


def test_gpu_profile_bad_values_name_the_field():
    with pytest.raises(ConfigError, match="ModelCfg.dtype: must be one of"): get_profile("gpu", {"model.dtype": "bf16"})
    with pytest.raises(ConfigError, match="ModelCfg.dtype"): resolve_teacher("llama3-8b", "bf16", "auto")
    with pytest.raises(ConfigError, match="ModelCfg.teacher: 'llama3-8B' is no preset"): resolve_teacher("llama3-8B", "bfloat16", "auto")
    with pytest.raises(ConfigError, match="ModelCfg.device"): get_profile("gpu", {"model.device": "gpu"})


def test_lwa_profile_gpu_resolves_with_an_override(tmp_path):
    r = subprocess.run([str(BIN / "lwa"), "profile", "gpu", "--set", f"model.teacher={tmp_path}"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert (d["model"]["teacher"], d["model"]["dtype"], d["data"]["dataset"]) == (str(tmp_path), "bfloat16", "amazon2023:Office_Products")


# ---------- a bf16 teacher from a local folder ----------

def test_gpu_profile_teacher_from_a_local_folder_loads_in_bf16(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM
    tok = tiny_tokenizer(); torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    LlamaForCausalLM(cfg).save_pretrained(tmp_path); tok.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and not list(tmp_path.glob("*.bin"))
    for device in ("cpu", "auto"):  # "auto" is the profile's own device; on a machine without a GPU it places everything on the CPU
        m = get_profile("gpu", {"model.teacher": str(tmp_path), "model.device": device}).model
        lm, tk = load_teacher(m.teacher, m.dtype, m.device, m.trust_remote_code)
        assert type(lm).__name__ == "LlamaForCausalLM" and {p.dtype for p in lm.parameters()} == {torch.bfloat16}
        with torch.no_grad(): logits = lm(**tk(["Norvik Compact Stapler"], return_tensors="pt")).logits
        assert logits.dtype == torch.bfloat16 and torch.isfinite(logits.float()).all()


# ---------- accelerate configs ----------

ACC = ROOT / "configs" / "accelerate"


def _launch_args(path):
    "What `accelerate launch --config_file path` resolves, through the installed accelerate's own parser and validation."
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    parser = launch_command_parser()
    args = parser.parse_args(["--config_file", str(path), "train.py"])
    _validate_launch_command(args)
    return args, {a.dest for a in parser._actions}


@pytest.mark.parametrize("name, dist, n, multi_gpu, fsdp", [("single_gpu", "NO", 1, False, False), ("multi_gpu_ddp", "MULTI_GPU", 8, True, False),
                                                            ("fsdp", "FSDP", 8, False, True)])
def test_accelerate_configs_parse(name, dist, n, multi_gpu, fsdp):
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.utils import DistributedType
    c = ClusterConfig.from_yaml_file(str(ACC / f"{name}.yaml"))  # rejects unknown top-level keys
    assert (c.distributed_type, c.num_processes, c.num_machines, c.mixed_precision) == (DistributedType(dist), n, 1, "bf16")
    args, _ = _launch_args(ACC / f"{name}.yaml")
    assert (args.multi_gpu, args.use_fsdp, args.num_processes, args.mixed_precision) == (multi_gpu, fsdp, n, "bf16")


def test_fsdp_config_builds_the_intended_plugin():
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_multi_gpu_env
    from torch.distributed.fsdp import StateDictType
    from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy
    from transformers import LlamaForCausalLM
    from accelerate.commands.config.config_args import ClusterConfig
    keys = ClusterConfig.from_yaml_file(str(ACC / "fsdp.yaml")).fsdp_config
    args, options = _launch_args(ACC / "fsdp.yaml")
    assert set(keys) <= options, f"fsdp_config keys that accelerate launch ignores: {sorted(set(keys) - options)}"  # a misspelt key is silently dropped
    env = prepare_multi_gpu_env(args)
    assert (env["ACCELERATE_USE_FSDP"], env["ACCELERATE_MIXED_PRECISION"]) == ("true", "bf16")
    with mock.patch.dict(os.environ, env): plugin = FullyShardedDataParallelPlugin()
    assert (plugin.fsdp_version, plugin.reshard_after_forward) == (2, True)  # FSDP2's full shard
    assert plugin.auto_wrap_policy is transformer_auto_wrap_policy and plugin.transformer_cls_names_to_wrap == ["LlamaDecoderLayer"]
    assert "LlamaDecoderLayer" in LlamaForCausalLM._no_split_modules  # the class really is Llama's block
    assert plugin.state_dict_type == StateDictType.SHARDED_STATE_DICT and plugin.cpu_ram_efficient_loading is True


# ---------- the Amazon 2023 download helper, against a local server ----------

def _gz(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    "A folder laid out as the 2023 release: 12 users x 6 reviews of 8 items (so a 5-core keeps all), plus a category whose reviews are cut short."
    root = tmp_path_factory.mktemp("mirror")
    reviews = [dict(user_id=f"U{u}", parent_asin=f"P{(u + k) % 8}", asin=f"P{(u + k) % 8}-v", timestamp=1_650_000_000_000 + 60_000 * k, rating=5.0,
                    title="fine", text="works") for u in range(12) for k in range(6)]
    _gz(root / "raw/review_categories" / REVIEWS, reviews)
    _gz(root / "raw/meta_categories" / META, [dict(parent_asin=f"P{i}", title=f"Item {i}", main_category="Office Products", store="Acme",
                                                  description=["A thing."]) for i in range(8)])
    z = (root / "raw/review_categories" / REVIEWS).read_bytes()
    (root / "raw/review_categories/Cut_Cat.jsonl.gz").write_bytes(z[: len(z) // 2])
    (root / "raw/meta_categories/meta_Cut_Cat.jsonl.gz").write_bytes((root / "raw/meta_categories" / META).read_bytes())
    return root


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *a): pass


class _Short(BaseHTTPRequestHandler):
    "Announces 100000 bytes, sends 500, hangs up: an interrupted download."
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "100000"); self.end_headers(); self.wfile.write(b"\x1f\x8b" + b"x" * 498)
    def log_message(self, *a): pass


@pytest.fixture
def serve(monkeypatch):
    "Start a server on 127.0.0.1 at a free port: serve(folder) -> (base URL, stop)."
    for k in ("no_proxy", "NO_PROXY"): monkeypatch.setenv(k, "127.0.0.1,localhost")
    servers = []
    def start(folder=None, handler=None):
        srv = ThreadingHTTPServer(("127.0.0.1", 0), handler or functools.partial(_Quiet, directory=str(folder)))
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, kwargs=dict(poll_interval=0.05), daemon=True).start(); servers.append(srv)
        def stop(): srv.shutdown(); srv.server_close()
        return f"http://127.0.0.1:{srv.server_port}/", stop
    yield start
    for s in servers: s.shutdown(); s.server_close()  # shutdown first: a closed socket under a running serve_forever spins a core


def _nothing_half_written(folder, *names):
    return not [p.name for p in folder.glob("*") if p.name in names or p.name.endswith(".part")]


def test_download_then_load_dataset_then_offline_reuse(mirror, serve, tmp_path, monkeypatch):
    base, stop = serve(mirror)
    monkeypatch.setenv("LWA_DATA_DIR", str(tmp_path)); monkeypatch.setenv("LWA_AMAZON2023_URL", base)
    ds = load_dataset(f"amazon2023:{CAT}")
    assert (ds.name, ds.n_users, ds.n_items, ds.n_interactions) == ("amazon2023_test_cat", 12, 8, 72)
    assert re.fullmatch(r"[a-z0-9_]+", ds.name)  # run folders and figure names are built from it
    folder = tmp_path / "amazon2023"
    served = {n: hashlib.sha256((mirror / rel).read_bytes()).hexdigest() for n, rel in
              [(REVIEWS, f"raw/review_categories/{REVIEWS}"), (META, f"raw/meta_categories/{META}")]}
    assert read_sums(folder / SUMS) == served and (folder / SUMS).read_text() == "".join(f"{served[n]}  {n}\n" for n in sorted(served))
    assert not list(folder.glob("*.part")) and not list(folder.glob(".*.part"))
    stop()  # offline from here on: the cached copy is verified against SHA256SUMS and read
    again = load_dataset(f"amazon2023:{CAT}")
    assert again.checksum() == ds.checksum()
    cfg = get_profile("gpu", {"data.dataset": f"amazon2023:{CAT}"}).data  # the gpu profile's data path: load, 5-core, no subsample
    assert load_data(cfg).n_interactions == 72


def test_wrong_expected_checksum_deletes_the_download(mirror, serve, tmp_path):
    base, _ = serve(mirror)
    good = hashlib.sha256((mirror / "raw/review_categories" / REVIEWS).read_bytes()).hexdigest()
    with pytest.raises(DownloadError) as e:
        download_amazon2023(CAT, tmp_path, base_url=base, expected={REVIEWS: "ab" * 32}, progress=False)
    msg = str(e.value)
    assert REVIEWS in msg and "ab" * 32 in msg and good in msg and "deleted" in msg and "update the expected checksums" in msg
    assert _nothing_half_written(tmp_path, REVIEWS, META)
    (tmp_path / "expected.sha256").write_text(f"{'cd' * 32}  {META}\n")  # a manifest file: named in the error
    with pytest.raises(DownloadError, match=re.escape(str(tmp_path / "expected.sha256"))):
        download_amazon2023(CAT, tmp_path, base_url=base, expected=tmp_path / "expected.sha256", progress=False)
    assert not (tmp_path / META).exists() and (tmp_path / REVIEWS).is_file()  # the reviews file passed; the meta file did not


def test_truncated_gzip_is_rejected_and_not_kept(mirror, serve, tmp_path):
    base, _ = serve(mirror)
    with pytest.raises(DownloadError, match=r"Cut_Cat\.jsonl\.gz \(downloaded from .*\): truncated or corrupt gzip"):
        download_amazon2023("Cut_Cat", tmp_path, base_url=base, progress=False)
    assert _nothing_half_written(tmp_path, "Cut_Cat.jsonl.gz", "meta_Cut_Cat.jsonl.gz") and not (tmp_path / SUMS).exists()


def test_interrupted_download_is_not_kept(serve, tmp_path):
    base, _ = serve(handler=_Short)
    with pytest.raises(DownloadError, match=r"download interrupted after 500 of 100000 bytes; nothing was kept"):
        download_amazon2023(CAT, tmp_path, base_url=base, progress=False)
    assert _nothing_half_written(tmp_path, REVIEWS, META)


def test_offline_without_a_copy_says_what_to_do(mirror, serve, tmp_path, monkeypatch):
    base, stop = serve(mirror); stop()
    url = amazon2023_urls(CAT, base)[REVIEWS]
    monkeypatch.setenv("LWA_DATA_DIR", str(tmp_path)); monkeypatch.setenv("LWA_AMAZON2023_URL", base)
    with pytest.raises(DataError) as e: load_dataset(f"amazon2023:{CAT}")  # a DataError, so `lwa stats` reports it cleanly
    msg = str(e.value)
    assert isinstance(e.value, DownloadError) and f"cannot reach {url}" in msg and "looks offline" in msg
    assert "download the two files by hand" in msg and str(tmp_path / "amazon2023") in msg and "LWA_AMAZON2023_URL" in msg and "LWA_DATA_DIR" in msg
    assert _nothing_half_written(tmp_path / "amazon2023", REVIEWS, META)


def test_corrupted_cached_copy_is_named(mirror, serve, tmp_path):
    base, stop = serve(mirror)
    rv, mt = download_amazon2023(CAT, tmp_path, base_url=base, progress=False)
    stop()
    b = bytearray(mt.read_bytes()); b[len(b) // 2] ^= 0xFF; mt.write_bytes(bytes(b))
    with pytest.raises(DownloadError, match=re.escape(f"{mt}: SHA-256 is")) as e: download_amazon2023(CAT, tmp_path, base_url=base)
    assert str(tmp_path / SUMS) in str(e.value) and f"delete {mt} and load again" in str(e.value)
    assert mt.is_file()  # reported, never deleted behind the user's back


def test_copies_placed_by_hand_are_checked_then_recorded(mirror, tmp_path):
    (tmp_path / REVIEWS).write_bytes((mirror / "raw/review_categories" / REVIEWS).read_bytes())
    (tmp_path / META).write_bytes((mirror / "raw/meta_categories" / META).read_bytes())
    download_amazon2023(CAT, tmp_path, base_url="http://127.0.0.1:9/", progress=False)  # no network needed
    assert set(read_sums(tmp_path / SUMS)) == {REVIEWS, META}
    (tmp_path / "Cut_Cat.jsonl.gz").write_bytes((mirror / "raw/review_categories/Cut_Cat.jsonl.gz").read_bytes())
    (tmp_path / "meta_Cut_Cat.jsonl.gz").write_bytes((tmp_path / META).read_bytes())
    with pytest.raises(DownloadError, match=re.escape(f"{tmp_path / 'Cut_Cat.jsonl.gz'}: truncated or corrupt gzip")):
        download_amazon2023("Cut_Cat", tmp_path, base_url="http://127.0.0.1:9/", progress=False)


def test_404_names_the_category_and_bad_names_are_refused(mirror, serve, tmp_path):
    base, _ = serve(mirror)
    with pytest.raises(DownloadError, match=r"HTTP 404 not found: is the category 'Office_Product' misspelt\?"):
        download_amazon2023("Office_Product", tmp_path, base_url=base, progress=False)
    assert _nothing_half_written(tmp_path, "Office_Product.jsonl.gz")
    for bad in ("../etc", "Office Products", ""):
        with pytest.raises(DataError, match="letters, digits and underscores"): load_dataset(f"amazon2023:{bad}", tmp_path)
