"""The one place a config's ``search`` kind is mapped to its strategy class.

Adding a strategy: write its module in this package and add one line here (see
docs/architecture.md, "Adding a search strategy").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from snaketune.strategies.base import Strategy, search_section
from snaketune.strategies.bohb import Bohb
from snaketune.strategies.grid import GridSearch
from snaketune.strategies.hyperband import Hyperband
from snaketune.strategies.optuna import OptunaSearch
from snaketune.strategies.randomized import RandomSearch
from snaketune.strategies.successive_halving import SuccessiveHalving

if TYPE_CHECKING:
    from snaketune.search.plan import Plan

STRATEGIES: dict[str, type[Strategy]] = {
    cls.kind: cls for cls in (GridSearch, RandomSearch, Hyperband, SuccessiveHalving, OptunaSearch, Bohb)
}


def strategy_class(config: dict) -> type[Strategy]:
    """The strategy class of a config (raw or validated) with one ``search`` kind."""
    kind, _spec = search_section(config)
    try:
        return STRATEGIES[kind]
    except KeyError:
        raise ValueError(f"search: unknown kind {kind!r}; known: {', '.join(STRATEGIES)}") from None


def strategy_of_plan(plan: dict) -> type[Strategy]:
    """The strategy class named by a plan summary (its ``strategy`` key); a summary without one is
    a list of candidates (the base class: grid and random search's rows)."""
    return STRATEGIES.get(plan.get("strategy"), Strategy)


def strategy_for(config: dict, plan: Plan) -> Strategy:
    """The strategy object of a validated config and its base plan."""
    return strategy_class(config)(config, plan)
