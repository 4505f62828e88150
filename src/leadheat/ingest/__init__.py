"""Getting leads and their history in: validation at the edge, CSV files, Segment calls, and
recording it (events, leads, touches, outcomes, evidence) and merging leads that are one."""
