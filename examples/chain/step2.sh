#!/bin/sh
# step2.sh: add the tax. Runs under
#   evsub -n step2 -e process.step1.completed -- evrun -t process.step2 -- step2.sh
# with the process.step1.completed event on stdin: payload.output is what
# step 1 printed.
set -eu
: "${TAX_PERCENT:=20}"
jq -ce --argjson pct "$TAX_PERCENT" '.payload.output
    | . + {tax_cents: (.subtotal_cents * $pct / 100 | round)}
    | . + {total_cents: (.subtotal_cents + .tax_cents)}'
