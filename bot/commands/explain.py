"""`netlog-bot explain --cluster C 'checkout/web → payments/api:8080/tcp'`: why the flow was denied and
the minimal policy that would allow it, in the same words as `/netlog explain` and `propose`."""

from __future__ import annotations

from typing import TextIO

from bot.adapters.kube import KubeError
from bot.render.explain import explanation_text
from bot.services import configured_clusters, flow_explainer
from bot.services.explain import CannotExplain
from bot.settings import Settings


def run_explain(settings: Settings, cluster: str | None, flow: str, out: TextIO, err: TextIO) -> int:
    """Exit 0 with the answer; 2 with a sentence when the flow or the cluster cannot be read."""
    explainer = flow_explainer(settings, configured_clusters(settings))
    try:
        answer = explainer.explain(explainer.cluster(cluster), flow)
    except (CannotExplain, KubeError) as error:
        print(f"netlog-bot explain: {str(error).replace('`', '')}", file=err)
        return 2
    out.write(explanation_text(answer))
    return 0
