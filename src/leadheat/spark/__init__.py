"""leadheat's scoring on Apache Spark, for histories too large for one machine.

Spark reads, moves and groups the data (Parquet, CSV or JDBC tables laid out as the store's
own); the arithmetic is leadheat's own code run on the executors: the bulk fold of
:mod:`leadheat.scoring.rescoring` per partition of leads, fit, evidence, status and
temperature per lead, and the predictive model's features as of each decision time. So a
Spark re-score equals the in-process one, at any size (tests compare them).

Needs the optional ``spark`` extra: ``pip install 'leadheat[spark]'`` (PySpark, pandas,
pyarrow) and a Java runtime.
"""
