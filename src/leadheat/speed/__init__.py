"""Speed to lead: business calendars, triggers, assignment and the words of an alert (pure:
they read neither the clock nor the database), and over them the reps who own leads
(:mod:`~leadheat.speed.roster`) and their SLA clocks (:mod:`~leadheat.speed.sla`)."""
