"""Where tiles run: the embedded local cluster, a running scheduler, Slurm worker jobs and
one-allocation runs, with their certificates. Imported only when a command starts a cluster."""
