"""The training doctor's findings beside the curves of the Train page: what looks wrong, in plain words, the
numbers it rests on, what to change, and for a change a resumed run can take, a button that applies it and
resumes the run in its worker."""

from __future__ import annotations

import time

import streamlit as st

import engine
from engine.base import findings as schema
from engine.base.findings import Finding, Suggestion
from studio.config_form import longer, trained_seconds
from studio.errors import shown_in_page

STOP_WAIT_SECONDS = 60.0  # how long Apply waits for a training run to stop before it resumes it
LONGER_MINUTES = 10  # a finished run resumes for this long (as Train longer's default)
ICONS = {schema.CRITICAL: ":material/error:", schema.WARNING: ":material/warning:", schema.INFO: ":material/info:"}


def value_text(value: object) -> str:
    """A suggested value as the user would type it."""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def evidence_text(finding: Finding) -> str:
    """'D(x) (window mean) 0.9997 · D(G(z)) (window mean) 0.0002 · …'."""
    return " · ".join(f"{name} **{value:.3g}**" if isinstance(value, float) else f"{name} **{value}**"
                      for name, value in finding.evidence.items())


def changed_config(run: engine.Run, suggestion: Suggestion) -> engine.Config:
    """The run's config with the suggestion applied (validated), given more time when the run had finished."""
    config = run.config()
    engine.update_from_dotted(config, suggestion.key, suggestion.value)
    status = run.status()
    if status["state"] == "finished":
        config = longer(config, status.get("step") or 0, trained_seconds(run, status), "minutes", LONGER_MINUTES)
    config.validate()
    return config


def apply_and_resume(run: engine.Run, suggestion: Suggestion) -> None:
    """Stop the run if it trains (it finishes the step and saves), set the key, resume it from its checkpoint."""
    changed_config(run, suggestion)  # a value the run cannot take is refused before the run is stopped
    if run.is_live():
        run.request_stop()
        with st.spinner("Stopping the run at the end of its step…"):
            deadline = time.monotonic() + STOP_WAIT_SECONDS
            while run.is_live() and time.monotonic() < deadline:
                time.sleep(0.5)
        if run.is_live():
            st.warning("The run is still stopping; press the button again once it has stopped.",
                       icon=":material/hourglass_bottom:")
            return
    engine.start_training(changed_config(run, suggestion), run.path, resume=True)
    st.rerun()


def _suggestion(run: engine.Run, finding: Finding, index: int, suggestion: Suggestion) -> None:
    change = (f"`{suggestion.key}` → `{value_text(suggestion.value)}`" if suggestion.value is not None
              else f"`{suggestion.key}`")
    st.markdown(f"{change}: {suggestion.why}" + ("" if suggestion.safe else " *(needs a new run)*"))
    if suggestion.safe and suggestion.value is not None and run.latest_checkpoint() is not None:
        if st.button("Apply and resume", key=f"doctor-apply:{run.name}:{finding.kind}:{index}",
                         icon=":material/healing:",
                         help=f"Set {suggestion.key} = {value_text(suggestion.value)} and continue from the last "
                              "checkpoint (a training run stops at the end of its step first; a finished one "
                              f"trains {LONGER_MINUTES} more minutes)."):
            with shown_in_page("apply the change and resume"):
                apply_and_resume(run, suggestion)


def _finding(run: engine.Run, finding: Finding) -> None:
    with st.container(border=True):
        st.markdown(f"{ICONS.get(finding.severity, '')} **{finding.title}** · since step {finding.first_step:,}")
        st.markdown(finding.explanation)
        if finding.evidence:
            st.caption(evidence_text(finding))
        for index, suggestion in enumerate(finding.suggestions):
            _suggestion(run, finding, index, suggestion)


def findings_panel(run: engine.Run, found: list[Finding]) -> None:
    """The run's open findings, most severe first, then the resolved ones folded away."""
    st.markdown("**Training doctor**")
    active = sorted((f for f in found if f.active), key=lambda f: -schema.SEVERITIES.index(f.severity)
                    if f.severity in schema.SEVERITIES else 0)
    if not active:
        st.caption("Nothing looks wrong now.")
    for finding in active:
        _finding(run, finding)
    resolved = [f for f in found if not f.active]
    if resolved:
        with st.expander(f"Resolved ({len(resolved)})", icon=":material/check_circle:"):
            for finding in resolved:
                st.markdown(f"{finding.title}: steps {finding.first_step:,}–{finding.resolved_step:,}")
