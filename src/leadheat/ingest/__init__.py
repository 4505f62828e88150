"""Getting leads and their history in: validation at the edge, CSV files, Segment calls."""
