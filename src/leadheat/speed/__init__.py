"""Speed to lead: business calendars, triggers, assignment and the words of an alert (pure:
no clock, no database), and the reaction to a write that uses them (``dispatch``, ``watch``,
``ownership``, ``clocks``), run on the write's own connection so it commits with it or not
at all; over them the reps who own leads (:mod:`~leadheat.speed.roster`) and their SLA clocks
(:mod:`~leadheat.speed.sla`). Persistence (the clock, rep and outbox tables) stays in
``store/``."""
