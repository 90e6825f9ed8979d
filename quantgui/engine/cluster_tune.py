"""The engine's `tune` on a cluster (methods.tune hands it over when "cluster" is not
"local"): every machine type tuned on its own nodes, none of it in this process."""

from __future__ import annotations

from typing import Any

from .calls import Call, CancelledWith, _need, _only
from .protocol import ProtocolError


def cluster_tune(params: dict, call: Call, budget: Any, options: Any) -> dict[str, Any]:
    """The tune on every machine type of a cluster (core/cluster/ray_tune.py): `model` the open
    parameters each node opens; a partial {"machine": type, "trial": TuneTrial} per trial, then
    {"cluster_tune": ClusterTuneResult}; a cancel's error data holds every type's so far."""
    from quantgui.core.cluster import MODEL_PARAMS, tuner_for
    model = _need(params, "model")
    if not isinstance(model, dict) or not model.get("source"):
        raise ProtocolError("\"model\" must be the open parameters, with a \"source\"")
    _only(model, MODEL_PARAMS)
    tuner = tuner_for(params["cluster"])
    given = params.get("options") or {}
    request = {"budget": None if budget is None else budget.to_json(),
               "run": {k: getattr(options, k) for k in given if hasattr(options, k)},
               "max_candidates": params.get("max_candidates"),
               "include_compile": bool(params.get("include_compile")),
               "samples": params.get("samples"), "time_limit_s": params.get("time_limit_s")}
    result = tuner.run(model, request, call.task, params.get("log"), bool(params.get("resume")),
                       lambda machine, t: call.partial({"machine": machine,
                                                        "trial": t.to_json()}))
    if result.cancelled:
        raise CancelledWith({"cluster_tune": result.to_json()})
    return {"cluster_tune": result.to_json()}
