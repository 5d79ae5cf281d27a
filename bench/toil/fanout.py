"""A Toil workflow that fans out: one job adds N children (500 by default), each returns its index, and a follow-on
adds up what they returned and writes the sum to --outputFile, so a lost or doubled child shows in the output.

    python3 fanout.py file:JOBSTORE --batchSystem NAME [--children 500] [--childCores 0.25] --outputFile sum.txt
"""

from argparse import ArgumentParser

from toil.common import Toil
from toil.job import Job


def child(job, index):
    return index


def add_up(job, values, output):
    with open(output, "w") as handle:
        handle.write(f"{sum(values)}\n")


def fan_out(job, children, cores, output):
    results = [job.addChildJobFn(child, index, cores=cores, memory="100M", disk="100M").rv() for index in range(children)]
    job.addFollowOnJobFn(add_up, results, output, cores=cores, memory="100M", disk="100M")


def main():
    parser = ArgumentParser(description=__doc__)
    Job.Runner.addToilOptions(parser)
    parser.add_argument("--children", type=int, default=500)
    parser.add_argument("--childCores", type=float, default=0.25)
    parser.add_argument("--outputFile", required=True)
    options = parser.parse_args()
    with Toil(options) as toil:
        toil.start(Job.wrapJobFn(fan_out, options.children, options.childCores, options.outputFile,
                                 cores=options.childCores, memory="100M", disk="100M"))


if __name__ == "__main__":
    main()
