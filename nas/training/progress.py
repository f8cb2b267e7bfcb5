"""A progress bar over epochs, as an epoch callback of ``train``: drawn on a terminal only.

    >>> train(model, data, config, callbacks=[epoch_progress(config.epochs, "retrain")])  # doctest: +SKIP
"""

from __future__ import annotations

import os

from tqdm.auto import tqdm

from nas.training.loop import EpochCallback


def epoch_progress(total: int, desc: str, position: int = 0) -> EpochCallback:
    """An epoch callback drawing a bar of ``total`` epochs with the last epoch's metrics, at line ``position`` (one
    per concurrent trial). Quiet where stderr is not a terminal or ``CI`` is set, so logs keep one line per trial.
    On a resumed run the bar jumps to the first epoch reported."""
    # tqdm's disable=None is its "off unless a TTY"
    bar = tqdm(total=total, desc=desc, position=position, unit="epoch", leave=position == 0,
               disable=True if os.environ.get("CI") else None)

    def report(epoch: int, metrics: dict[str, float]) -> None:
        bar.n = epoch + 1
        bar.set_postfix(metrics)  # and redraw: tqdm's rate limit is for far shorter steps than an epoch
        if bar.n >= total:
            bar.close()

    return report
