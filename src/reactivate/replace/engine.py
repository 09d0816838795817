"""The entry points that replace the activations of a model and restore them.

:func:`replace_activations` validates its arguments, finds every site,
selects the ones to replace, observes them on an optional example input,
builds every adaptive module and only then changes the model.
:func:`restore_activations` undoes every recorded replacement round.
"""

from __future__ import annotations

import json
import re
import warnings
from typing import Any, Callable, Mapping, Sequence

from torch import nn

from ..activations import GRANULARITIES, AdaptiveActivation
from ..errors import ReactivateWarning, ReplacementError
from ..rules import Preset, SkipSite, build_activation, get_preset
from .inplace import _make_inplace, _site_needs_inplace
from .install import _STATE_ATTR, _install, _undo
from .probes import _EvalNoGrad, _output_difference, _output_scale, _Probe, _run, _site_shape
from .report import ReplacedSite, ReplacementReport, SkippedSite
from .sites import _Analysis, _device_dtype, _find_sites, _Site
from .spec import _site_spec
from .tracing import _activation_calls_in_source, _is_torch_nn_class

__all__ = ["replace_activations", "restore_activations"]

def _patterns(value: str | Sequence[str] | None, argument: str) -> list[re.Pattern]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    compiled = []
    for pattern in value:
        try:
            compiled.append(re.compile(pattern))
        except (re.error, TypeError) as exc:
            raise ReplacementError(f"{argument}={pattern!r} is not a valid regular expression: {exc}") from None
    return compiled


_ERROR_CACHE: dict[str, Any] = {}


def _error_bound(module: AdaptiveActivation, interval: tuple[float, float] | None):
    key = json.dumps([module.config(), interval], sort_keys=True, default=str)
    if len(_ERROR_CACHE) > 4096:
        _ERROR_CACHE.clear()
    if key not in _ERROR_CACHE:
        if interval is None:
            _ERROR_CACHE[key] = module.error_bound()
        else:
            low, high = interval
            if not high > low:
                low, high = low - 1e-3, high + 1e-3
            _ERROR_CACHE[key] = module.error_bound((low, high))
    return _ERROR_CACHE[key]


def replace_activations(
    model: nn.Module,
    preset: str | Preset | Mapping[str, Any] = "paper",
    *,
    example_input: Any = None,
    granularity: str = "layer",
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    filter_fn: Callable[[nn.Module, str], bool] | None = None,
    types: type | tuple[type, ...] | None = None,
    dry_run: bool = False,
    share_reused: bool = False,
    calibrate: bool = False,
    strict_trace: bool = False,
) -> ReplacementReport:
    r"""Replace the classic activations of ``model`` with adaptive ones, in place.

    Each replaced site gets an adaptive module that starts out reproducing
    the original (exactly, or within the error bound in the report), so the
    trained weights stay valid. Weights are never copied: the model keeps
    every parameter and buffer object, and gains only the adaptive
    parameters.

    Args:
        model: any ``nn.Module``.
        preset: ``"paper"`` (ReLU, SiLU -> AHAF; Tanh, Sigmoid -> F-neuron
            with 18 functions on [-4, 4]), ``"exact"`` (only activations a
            family reproduces exactly or to float rounding),
            ``"approximate"``, a registered preset name, or a dict such as
            ``{"relu": "leaf", "gelu": factory}``. Default: ``"paper"``.
        example_input: a tensor, a tuple of positional arguments or a dict of
            keyword arguments for ``model``. When given, one forward pass in
            eval mode without gradients records each site's input shape and
            range, checks that the rewritten model computes what the original
            did, and the report gives errors over the observed ranges.
            Required for ``granularity="channel"`` or ``"neuron"`` and for
            ``calibrate=True``. Default: None.
        granularity: ``"layer"`` (scalar parameters), ``"channel"`` (one set
            per index of dimension 1) or ``"neuron"`` (one set per input
            element; fixes the input shape). Default: ``"layer"``.
        include: regular expression(s) searched (``re.search``) in each
            site's name; only matching sites are replaced. A further call
            of a reused module also matches by the reused module's name.
            Default: None (all sites).
        exclude: regular expression(s); matching sites are left alone.
            A pattern that matches nothing warns. Default: None.
        filter_fn: predicate ``filter_fn(module, name) -> bool``; ``module``
            is the original activation module, or for a functional call an
            equivalent ``torch.nn`` module (``nn.ReLU`` for ``F.relu``).
            Default: None.
        types: only replace originals that are instances of these
            ``torch.nn`` classes (functional calls count as their module
            equivalents). Default: None (all).
        dry_run: report what would be replaced and leave the model as it is.
            With ``example_input`` the forward pass still runs, through
            temporary probes that are removed again. Default: False.
        share_reused: give a module called at several places a single
            adaptive module instead of one per call site. Default: False.
        calibrate: take each F-neuron's interval from the observed input
            range (rounded outward to 0.25) instead of [-4, 4]. Default: False.
        strict_trace: raise instead of warning when a module whose source
            calls an activation function cannot be traced. Default: False.

    Returns:
        A :class:`ReplacementReport` with one entry per replaced call site and
        one per activation left alone, with the reason.

    Raises:
        ReplacementError: on invalid arguments, a missing ``example_input``,
            an untraceable module with ``strict_trace=True``, or a rewrite
            that changes the output of ``example_input``. The model is left
            unchanged.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> report = replace_activations(model, "paper")
        >>> type(model[1]).__name__
        'AHAF'

    .. note::
        Calibration runs in eval mode (BatchNorm uses its running statistics
        and keeps them, Dropout is off); training flags are restored after.
        The gamma of 1e9 that AHAF uses for ReLU overflows float16, so
        convert a float16 model after the replacement, or use bfloat16.
    """
    if not isinstance(model, nn.Module):
        raise ReplacementError(f"replace_activations needs an nn.Module, got {type(model).__name__}")
    chosen = get_preset(preset)
    if granularity not in GRANULARITIES:
        raise ReplacementError(
            f"granularity={granularity!r} is invalid; use one of {', '.join(repr(g) for g in GRANULARITIES)}"
        )
    if granularity != "layer" and example_input is None:
        raise ReplacementError(
            f"granularity={granularity!r} needs example_input=, a batch the model accepts, "
            "so that each site's input shape is known; or use granularity='layer'"
        )
    if calibrate and example_input is None:
        raise ReplacementError("calibrate=True needs example_input=, a batch whose activation ranges to use")
    includes = _patterns(include, "include")
    excludes = _patterns(exclude, "exclude")
    if filter_fn is not None and not callable(filter_fn):
        raise ReplacementError(f"filter_fn={filter_fn!r} is not callable; give a function (module, name) -> bool")
    if types is not None:
        types = tuple(types) if isinstance(types, (list, tuple)) else (types,)
        if not all(isinstance(t, type) for t in types):
            raise ReplacementError(f"types={types!r} is invalid; give nn.Module classes such as (nn.ReLU,)")

    # 1. Find every site; nothing in the model changes here.
    analysis = _Analysis(model)
    sites, skipped = _find_sites(analysis, share_reused)
    report = ReplacementReport(chosen.name, granularity, dry_run, skipped=skipped)
    for path, reason in analysis.untraced.items():
        module = analysis.modules[path]
        if _is_torch_nn_class(module):
            report.unreached.append((path, reason))
            continue
        calls = _activation_calls_in_source(module)
        if calls:
            report.unreached.append((path, f"calls {', '.join(calls)} but tracing failed: {reason}"))
    if report.unreached:
        names = ", ".join(repr(p or "<model>") for p, _ in report.unreached)
        message = (f"could not trace the forward of {names}, so activation functions called there "
                   f"stay unchanged ({report.unreached[0][1]})")
        if strict_trace:
            raise ReplacementError(message + "; make the forward traceable by torch.fx or pass strict_trace=False")
        warnings.warn(message, ReactivateWarning, stacklevel=2)

    # 2. Select sites.
    used_excludes: set[int] = set()
    used_includes: set[int] = set()
    selected: list[_Site] = []
    for site in sites:
        described = site.original.describe()
        hit = [i for i, p in enumerate(excludes) if any(p.search(n) for n in site.match_names)]
        used_excludes.update(hit)
        if hit:
            report.skipped.append(SkippedSite(site.name, described, f"excluded by {excludes[hit[0]].pattern!r}"))
            continue
        if includes:
            hit = [i for i, p in enumerate(includes) if any(p.search(n) for n in site.match_names)]
            used_includes.update(hit)
            if not hit:
                report.skipped.append(SkippedSite(site.name, described, "not matched by include"))
                continue
        module = site.original.module
        if types is not None and not isinstance(module, types):
            report.skipped.append(SkippedSite(site.name, described, "not of the requested types"))
            continue
        if filter_fn is not None and not filter_fn(module, site.name):
            report.skipped.append(SkippedSite(site.name, described, "rejected by filter_fn"))
            continue
        if chosen.factory_for(site.original.name) is None:
            known = ", ".join(sorted(chosen.factories))
            report.skipped.append(SkippedSite(
                site.name, described, f"preset {chosen.name!r} has no family for {site.original.name} "
                f"(it covers {known})"))
            continue
        selected.append(site)
    for i, pattern in enumerate(excludes):
        if i not in used_excludes:
            warnings.warn(f"exclude pattern {pattern.pattern!r} matched no activation site", ReactivateWarning,
                          stacklevel=2)
    for i, pattern in enumerate(includes):
        if i not in used_includes:
            warnings.warn(f"include pattern {pattern.pattern!r} matched no activation site", ReactivateWarning,
                          stacklevel=2)
    for site in selected:
        site.inplace = _site_needs_inplace(analysis, site)

    # 3. Observe the sites on the example input through temporary probes.
    probes: list[_Probe] = []
    reference = None
    if example_input is not None and selected:
        probes = [_Probe(site.original.module if site.kind != "function" else site.probe_fn)
                  for site in selected]
        with _EvalNoGrad(model):
            try:
                reference = _run(model, example_input)
            except Exception as exc:
                raise ReplacementError(
                    f"the model failed on example_input ({type(exc).__name__}: {exc}); "
                    "give a batch that model(example_input) accepts") from None
            record = _install(model, analysis, selected, probes)
            try:
                probed = _run(model, example_input)
            except Exception as exc:
                raise ReplacementError(
                    f"the rewritten model failed on example_input ({type(exc).__name__}: {exc}); a traced "
                    "forward depends on control flow that fx fixed while tracing. Exclude the affected "
                    "sites with exclude= or restructure the forward") from None
            finally:
                _undo(record)
        difference = _output_difference(reference, probed)
        if not difference <= 1e-6 * max(1.0, _output_scale(reference)):
            raise ReplacementError(
                "rewriting the traced modules changed the model's output on example_input "
                f"(max abs difference {difference:.3g}); a traced forward depends on control flow that "
                "fx fixed while tracing. Exclude the affected sites with exclude= or restructure the forward")

    # 4. Build every adaptive module before touching the model.
    modules: list[AdaptiveActivation] = []
    final: list[_Site] = []
    for index, site in enumerate(selected):
        probe = probes[index] if probes else None
        observed = probe.observed_range() if probe is not None else None
        site.original.observed_range = observed if calibrate else None
        try:
            config = chosen.factory_for(site.original.name)(site.original)
        except SkipSite as exc:
            report.skipped.append(SkippedSite(site.name, site.original.describe(), str(exc)))
            continue
        if config is None:
            report.skipped.append(SkippedSite(site.name, site.original.describe(), "the preset's factory declined"))
            continue
        config = dict(config)
        config["granularity"] = granularity
        if granularity != "layer":
            shape, reason = _site_shape(probe, granularity)
            if shape is None:
                report.skipped.append(SkippedSite(site.name, site.original.describe(), reason))
                continue
            config["shape"] = list(shape)
        if probe is not None and probe.device is not None and probe.dtype is not None and probe.dtype.is_floating_point:
            device, dtype = probe.device, probe.dtype
        else:
            device, dtype = _device_dtype(model, site.slots[0] if site.slots else site.parent_path)
        try:
            module = build_activation(config, device=device, dtype=dtype)
        except ValueError as exc:
            raise ReplacementError(f"cannot build the adaptive module for {site.name}: {exc}") from None
        if site.inplace:
            _make_inplace(module)
        site.config, site.module = config, module
        modules.append(module)
        final.append(site)
        bound_real = _error_bound(module, None)
        bound_observed = _error_bound(module, observed) if observed is not None else None
        report.replaced.append(ReplacedSite(
            name=site.name, kind=site.kind, original=site.original.describe(), family=module.family,
            granularity=granularity, shape=config.get("shape"), exact=bound_real.exact,
            max_abs_error=bound_observed.max_abs_error if bound_observed is not None else None,
            max_abs_error_real_line=bound_real.max_abs_error_real_line,
            observed_range=observed, inplace=site.inplace, config=module.config(),
        ))
    if dry_run or not final:
        return report

    # 5. Change the model.
    record = _install(model, analysis, final, modules)
    record.sites = [_site_spec(site, module) for site, module in zip(final, modules)]
    model.__dict__.setdefault(_STATE_ATTR, []).append(record)
    if reference is not None:
        with _EvalNoGrad(model):
            report.output_max_abs_error = _output_difference(reference, _run(model, example_input))
    return report


def restore_activations(model: nn.Module) -> int:
    """Put the original activations back, undoing every replacement on ``model``.

    Activation modules return to their slots, rewritten forwards are removed
    (the class's own forward, with its functional calls, applies again) and
    the adaptive modules with their parameters are dropped.

    Args:
        model: a model changed by :func:`replace_activations` or
            :func:`reapply_replacement`.

    Returns:
        The number of adaptive modules removed (0, with a warning, when
        the model had none).

    Example:
        >>> replace_activations(model)  # doctest: +SKIP
        >>> restore_activations(model)  # doctest: +SKIP
    """
    rounds = model.__dict__.pop(_STATE_ATTR, None)
    if not rounds:
        warnings.warn("restore_activations: the model has no replaced activations", ReactivateWarning, stacklevel=2)
        return 0
    count = 0
    for record in reversed(rounds):
        _undo(record)
        count += len(record.sites)
    return count
