#!/bin/sh
# step3.sh: issue the invoice. Runs under
#   evsub -n step3 -e process.step2.completed -- evrun -t process -- step3.sh
# so that its outcome is the whole workflow's: process.completed (or
# process.failed), with this script's JSON as payload.output.
set -eu
jq -ce '.payload.output
    | {order, invoice: ("INV-" + .order), total_cents, status: "invoiced"}'
