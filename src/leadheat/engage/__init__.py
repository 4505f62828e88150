"""Never disengage: follow-up tasks from cadences, nurture sequences, lost hot leads and
win-back lists with the conversion rate the team's own history predicts."""
