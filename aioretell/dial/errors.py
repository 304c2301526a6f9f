"""What ends a campaign run early: one line for the user, the journal left consistent."""

from __future__ import annotations


class CampaignError(Exception):
    """The run stopped; ``str()`` is the one line to show. Leads not dialled stay pending."""


class AccountError(CampaignError):
    """Retell refuses this account, key, number or agent for every request, not for a lead
    (401, 402, 403, an unknown ``--agent-id`` or ``--from-number``)."""


class UnreachableError(CampaignError):
    """The API could not be reached when the run started."""


class BackgroundTaskError(CampaignError):
    """A task the run depends on (capacity poller, call follower, lease heartbeat, live view)
    died; ``__cause__`` is its error."""

    def __init__(self, task: str, error: BaseException) -> None:
        super().__init__(f"the {task} stopped: {type(error).__name__}: {error}")
        self.task = task
        self.error = error
