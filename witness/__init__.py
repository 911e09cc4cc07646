"""What runs in the student's kernel while a notebook is autograded (and nothing that judges).

- :mod:`witness.kernel` -- the grading kernel: ipykernel plus the ``interp.witness`` comm target;
- :mod:`witness.agent` -- calls a notebook function on the grader's request and describes the
  result, the exception and what the call changed in its arguments, as plain data;
- :mod:`witness.codec` -- that plain-data format: encoded here, decoded strictly by the grader.

The student controls this process, and with it everything in this package: whatever it reports
is testimony. Scores are computed by the grader (:mod:`grading.trusted_tests`, :mod:`autograder`),
which compares what comes back with its own reference and writes the grade cells' outputs itself.
Neither the reference (``solutions/``) nor the checks (``autograder/``) are in this process.
"""
