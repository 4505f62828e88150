"""Speed to lead, the pure part: business calendars, triggers, assignment and the words of
an alert. Nothing here reads the clock or the database; ``store/`` and ``delivery/`` do."""
