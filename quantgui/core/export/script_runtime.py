"""The fixed part of every generated script: calling, timing, sizing and saving in plain torch.

Kept as source text (not imported by QuantGUI) so the script needs nothing but torch. It mirrors
the engine's rules: `call` holds how the model is called (input dtype, channels-last, grad mode,
autocast, quantized engine), sizes are bytes as saved (`torch.jit.save` for TorchScript, else the
state_dict), timing alternates before/after in each round and reports medians.
"""

RUNTIME = r'''
# ---- how the model is called -------------------------------------------------------------------

class Inputs:
    def __init__(self, args=(), kwargs=None):
        self.args, self.kwargs = tuple(args), dict(kwargs or {})

    def flat(self):
        return tuple(self.args) + tuple(self.kwargs.values())


def load_example():
    data = torch.load(EXAMPLE_FILE, map_location="cpu", weights_only=True)
    return Inputs(data["args"], data["kwargs"])


def new_call():
    return {"dtype": None, "channels_last": False, "grad_mode": "no_grad", "autocast": None,
            "engine": None}


def prepare(call, inputs):
    def conv(t):
        if not isinstance(t, torch.Tensor):
            return t
        if call["dtype"] is not None and t.is_floating_point():
            t = t.to(call["dtype"])
        if call["channels_last"] and t.dim() == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        return t
    return Inputs([conv(a) for a in inputs.args], {k: conv(v) for k, v in inputs.kwargs.items()})


def run(model, call, inputs, prepared=False):
    if not prepared:
        inputs = prepare(call, inputs)
    if call["engine"]:
        torch.backends.quantized.engine = call["engine"]
    grad = torch.inference_mode() if call["grad_mode"] == "inference_mode" else torch.no_grad()
    with grad, contextlib.ExitStack() as stack:
        if call["autocast"] is not None:
            stack.enter_context(torch.autocast("cpu", dtype=call["autocast"]))
        return model(*inputs.args, **inputs.kwargs)


def primary(out):
    """The tensor outputs are compared on: logits / last hidden state / first tensor."""
    if isinstance(out, torch.Tensor):
        return out.detach().float() if out.is_floating_point() else out.detach()
    for key in ("logits", "last_hidden_state", "pooler_output"):
        value = out.get(key) if isinstance(out, dict) else getattr(out, key, None)
        if isinstance(value, torch.Tensor):
            return primary(value)
    items = list(out.values()) if isinstance(out, dict) else list(out)
    return primary(next(i for i in items if isinstance(i, (torch.Tensor, tuple, list, dict))))


def eager(model):
    """torch.compile wraps the model; its weights (and what can be saved) are underneath."""
    return getattr(model, "_orig_mod", model)


def size_bytes(model):
    if "artifact" in SAVEABLE and not isinstance(model, nn.Module):  # a runtime's file
        root, ext = os.path.splitext(SAVEABLE["artifact"])
        return sum(os.path.getsize(root + e) for e in ({ext, ".bin"} if ext == ".xml" else {ext}))
    m, buf = eager(model), io.BytesIO()
    if isinstance(m, torch.jit.ScriptModule):
        torch.jit.save(m, buf)
    else:
        torch.save(m.state_dict(), buf)
    return len(buf.getvalue())


# ---- timing: before and after alternate in every round ----------------------------------------

def time_interleaved(before, after, rounds, warmup=3, sample_s=0.02):
    for _ in range(warmup):
        before()
        after()
    single = []
    for fn in (before, after):
        t0 = time.perf_counter()
        fn()
        single.append(time.perf_counter() - t0)
    calls = max(1, min(100, int(sample_s / max(max(single), 1e-6))))
    samples = ([], [])
    for r in range(rounds):
        for which in ((0, 1) if r % 2 == 0 else (1, 0)):
            fn = (before, after)[which]
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            samples[which].append((time.perf_counter() - t0) / calls * 1e3)
    spreads = []
    for values in samples:
        q = statistics.quantiles(values, n=10) if len(values) >= 2 else [values[0]] * 9
        spreads.append((q[8] - q[0]) / statistics.median(values))
    return statistics.median(samples[0]), statistics.median(samples[1]), calls, max(spreads)


# ---- saving: the same order of formats QuantGUI uses -------------------------------------------

class Deployable(nn.Module):
    """Bakes the calling convention into the saved file: it takes the original inputs."""

    def __init__(self, module, call, kw_names):
        super().__init__()
        self.module, self.kw_names = module, tuple(kw_names)
        self.dtype, self.channels_last = call["dtype"], call["channels_last"]
        self.autocast = call["autocast"]

    def forward(self, *flat):
        conv = []
        for t in flat:
            if self.dtype is not None and t.is_floating_point():
                t = t.to(self.dtype)
            if self.channels_last and t.dim() == 4:
                t = t.contiguous(memory_format=torch.channels_last)
            conv.append(t)
        n = len(conv) - len(self.kw_names)
        args, kwargs = conv[:n], dict(zip(self.kw_names, conv[n:]))
        if self.autocast is not None:
            with torch.autocast("cpu", dtype=self.autocast):
                return self.module(*args, **kwargs)
        return self.module(*args, **kwargs)


def _is_legacy_quantized(m):
    return isinstance(m, nn.Module) and any(
        type(x).__module__.startswith(("torch.ao.nn.quantized", "torch.nn.quantized",
                                       "torch.ao.nn.intrinsic.quantized")) for x in m.modules())


def _write(path, writer):
    root, ext = os.path.splitext(path)
    tmp = root + ".part" + ext  # torch.export wants the .pt2 suffix
    try:
        writer(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


SAVEABLE = {}  # a step may leave the module to save here (freeze: before optimize_for_inference)


def save_artifact(model, call, out_base):
    """A runtime step's own file (.onnx, OpenVINO .xml + .bin, AOTInductor .pt2): copied to
    out_base + its suffix, reloaded with the step's SAVEABLE['reload'] and compared."""
    src = SAVEABLE["artifact"]
    root, ext = os.path.splitext(src)
    path = out_base + ext
    _write(path, lambda p: shutil.copyfile(src, p))
    if ext == ".xml":
        _write(out_base + ".bin", lambda p: shutil.copyfile(root + ".bin", p))
    reference = primary(run(model, call, EXAMPLE))
    got = primary(run(SAVEABLE["reload"](path), call, EXAMPLE))
    return path, ext[1:], float((got.float() - reference.float()).abs().max())


def save(model, call, out_base):
    """Save and reload; returns (path, format, max abs difference of the reloaded model)."""
    if "artifact" in SAVEABLE:
        return save_artifact(model, call, out_base)
    m = SAVEABLE.get("model", eager(model))
    plain = (call["dtype"] is None and not call["channels_last"] and call["autocast"] is None
             and not EXAMPLE.kwargs)
    target = m if plain else Deployable(m, call, EXAMPLE.kwargs)
    flat = EXAMPLE.flat()
    if isinstance(m, torch.jit.ScriptModule) or _is_legacy_quantized(m):
        order = ("torchscript", "state_dict")  # torch.export cannot save packed INT8 weights
    else:
        order = ("exported", "torchscript", "state_dict")
    reference = primary(run(model, call, EXAMPLE))
    errors = []
    for fmt in order:
        try:
            with torch.no_grad():
                if fmt == "torchscript":
                    path = out_base + ".torchscript.pt"
                    if isinstance(target, torch.jit.ScriptModule):
                        ts = target
                    elif plain:
                        try:
                            ts = torch.jit.script(target)
                        except Exception:
                            ts = torch.jit.trace(target, flat, strict=False, check_trace=False)
                    else:
                        ts = torch.jit.trace(target, flat, strict=False, check_trace=False)
                    _write(path, lambda p: torch.jit.save(ts, p))
                    reloaded = torch.jit.load(path)
                elif fmt == "exported":
                    path = out_base + ".pt2"
                    shapes = torch.export.ShapesCollection()
                    for t in flat:
                        if t.dim() > 0:
                            shapes[t] = {0: torch.export.Dim.AUTO}
                    try:
                        program = torch.export.export(
                            target, flat, strict=False,
                            dynamic_shapes=shapes.dynamic_shapes(target, flat))
                    except Exception:
                        program = torch.export.export(target, flat, strict=False)
                    _write(path, lambda p: torch.export.save(program, p))
                    reloaded = torch.export.load(path).module()
                else:
                    path = out_base + ".state_dict.pt"
                    _write(path, lambda p: torch.save(m.state_dict(), p))
                    return path, fmt, None
            engine = {**new_call(), "engine": call["engine"], "grad_mode": call["grad_mode"]}
            got = primary(run(reloaded, engine, Inputs(flat)))
            return path, fmt, float((got.float() - reference.float()).abs().max())
        except Exception as exc:
            errors.append(f"{fmt}: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
            print(f"  (could not save as {fmt}: {errors[-1]})", file=sys.stderr)
    raise RuntimeError("no format could save the model: " + "; ".join(errors))


def human_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(HERE, "rebuilt_model"),
                        help="path of the saved model, without extension (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved timing rounds")
    parser.add_argument("--threads", type=int, default=THREADS,
                        help="torch threads (default: what the QuantGUI run used)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    original = load_original().eval()
    model = copy.deepcopy(original)
    call = new_call()
    model = optimize(model, call)
    path, fmt, diff = save(model, call, args.out)
    base = new_call()
    pb, pa = prepare(base, EXAMPLE), prepare(call, EXAMPLE)
    out_b = primary(run(original, base, pb, prepared=True))
    out_a = primary(run(model, call, pa, prepared=True))
    if call["engine"]:
        base["engine"] = call["engine"]  # one process-wide setting for both sides
    b_ms, a_ms, calls, spread = time_interleaved(lambda: run(original, base, pb, prepared=True),
                                         lambda: run(model, call, pa, prepared=True), args.rounds)
    sb, sa = size_bytes(original), size_bytes(model)
    batch = next((t.shape[0] for t in EXAMPLE.flat() if t.dim() > 0), 1)
    print(f"recipe: {RECIPE}")
    for line in STEP_SUMMARIES:
        print(f"  {line}")
    check = "not reloaded" if diff is None else f"reloaded, max abs diff {diff:.3g}"
    print(f"saved: {path} ({fmt}; {check})")
    print(f"timing: median of {args.rounds} interleaved rounds x {calls} calls, batch {batch}, "
          f"{torch.get_num_threads()} threads")
    if spread > 0.25:
        print(f"NOISY: p10-p90 spread {spread:.0%} of the median; close other programs or use "
              f"more --rounds")
    print(f"{'':8}{'size':>12}{'latency':>14}")
    print(f"{'before':8}{human_bytes(sb):>12}{b_ms:>11.3f} ms")
    print(f"{'after':8}{human_bytes(sa):>12}{a_ms:>11.3f} ms")
    print(f"size ratio {sa / sb:.3f}   speedup {b_ms / a_ms:.2f}x   "
          f"max |after - before| {float((out_a.float() - out_b.float()).abs().max()):.3g}")


EXAMPLE = load_example()
'''
