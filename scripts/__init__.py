"""Developer scripts run from the checkout (`make screenshots`); not part of the wheel."""
