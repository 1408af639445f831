"""Optimisers and per-epoch learning-rate schedules of the networks."""

import torch

LEARNING_RATE_SCHEDULES = ("constant", "cosine", "step", "invscaling", "adaptive")


def make_optimizer(parameters, solver, learning_rate, momentum):
    """A torch optimiser over ``parameters`` for ``solver`` in {'adam', 'sgd'}."""
    if solver == "adam":
        return torch.optim.Adam(parameters, lr=learning_rate)
    if solver == "sgd":
        return torch.optim.SGD(parameters, lr=learning_rate, momentum=momentum)
    raise ValueError(f"solver must be 'adam' or 'sgd', got {solver!r}.")


def network_optimizer(network, extra_parameters, options):
    """The optimiser of a network's trainable parameters and ``extra_parameters``.

    ``None`` when nothing is trainable (a frozen network with a closed-form head).
    """
    parameters = [p for p in network.parameters() if p.requires_grad] + list(extra_parameters)
    if not parameters:
        return None
    return make_optimizer(parameters, options.solver, options.learning_rate, options.momentum)


def make_scheduler(optimizer, options):
    """Per-epoch learning-rate schedule, or ``None`` for a constant rate.

    * ``'cosine'``: cosine annealing from the initial rate to 0 over ``max_iter`` epochs;
    * ``'step'``: divided by 10 at 50% and again at 75% of ``max_iter``;
    * ``'invscaling'``: ``lr / (epoch + 1) ** power_t`` (MLPRegressor's rule, per epoch);
    * ``'adaptive'``: divided by 5 whenever two consecutive epochs fail to lower the
      training loss by ``tol`` (MLPRegressor's rule).
    """
    name = options.learning_rate_schedule
    if optimizer is None or name == "constant":
        return None
    schedulers = torch.optim.lr_scheduler
    epochs = options.max_iter
    if name == "cosine":
        return schedulers.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    if name == "step":
        milestones = sorted({max(epochs // 2, 1), max(3 * epochs // 4, 1)})
        return schedulers.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    if name == "invscaling":
        return schedulers.LambdaLR(optimizer, lambda epoch: 1.0 / (epoch + 1) ** options.power_t)
    if name == "adaptive":
        return schedulers.ReduceLROnPlateau(
            optimizer, factor=0.2, patience=1, threshold=options.tol, threshold_mode="abs"
        )
    raise ValueError(f"learning_rate must be one of {LEARNING_RATE_SCHEDULES}, got {name!r}.")


def step_scheduler(scheduler, loss):
    """Advance ``scheduler`` by one epoch (``loss`` drives the 'adaptive' rule)."""
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(loss)
    elif scheduler is not None:
        scheduler.step()
