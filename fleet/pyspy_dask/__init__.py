"""pyspy on a Dask cluster: a set of snapshot files is cut into
partitions in time order, each recorded by pyspy-analyze on a worker into
an aggregate file, and the partial profiles are merged at the client by
pyspy merge, which gives what one pyspy record over all the files gives.

    python3 -m pyspy_dask --scheduler tcp://HOST:8786 -o out.svg 'snaps/*'
"""
from pyspy_dask.driver import expand_inputs, partition, profile

__all__ = ["expand_inputs", "partition", "profile"]
