"""Per-sample frame-budget prediction (fixed, fps, similarity, instruction/Hybrid-Frame, text, oracle).

`base` holds the predictor seam, `BudgetConfig` and the registry; `stage` runs a predictor as a
Ray Data stage and writes the budgeted manifest; each predictor lives in its own module.
"""

from videosft.budget.base import (  # noqa: F401
    BUDGET_FELL_BACK,
    BudgetConfig,
    BudgetPrediction,
    BudgetPredictor,
    get_predictor,
    parse_budget_answer,
    predictor_from_config,
    predictor_names,
    snap_up,
)
