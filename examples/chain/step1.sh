#!/bin/sh
# step1.sh: price an order. Runs under
#   evsub -n step1 -e process.requested -- evrun -t process.step1 -- step1.sh
# with the process.requested event on stdin, whose payload is the order:
#   {"order":"A-17","items":[{"sku":"pen","qty":2,"cents":150},...]}
# Prints its result as JSON; evrun puts it in process.step1.completed as
# payload.output, the input of step 2.
set -eu
jq -ce '.payload | select(.order and (.items | length > 0))
    | {order, lines: (.items | length),
       subtotal_cents: (.items | map(.qty * .cents) | add)}' || {
	echo "step1.sh: event $EV_ID is not an order with items" >&2
	exit 100    # never retry: a dead letter at once
}
