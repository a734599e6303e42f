#!/usr/bin/env bash
# An AI developer workflow (ADW) in four steps, each a `claude -p` run whose stream-json output
# adw-send pushes to adw-ingest as it arrives; step_start / step_complete and adw_start /
# adw_complete / adw_failed system events frame the steps, so the dashboard shows one swimlane
# per step with its status and duration.
#
#   examples/adw_example.sh "Add JWT authentication middleware to src/auth"
#
# Environment (all optional):
#   ADW_ID            the run id (default: 8 random hex digits); exported, so hooks from
#                     examples/claude/settings.hooks.json land in the same run
#   ADW_INGEST_URL    send over HTTP (http://host:8000); else ZeroMQ
#   ADW_INGEST_ZMQ    ZeroMQ endpoint (default tcp://127.0.0.1:5555)
#   ADW_INGEST_TOKEN  bearer token for HTTP
#   ADW_SEND          the adw-send program (default: adw-send on PATH, else build/bin/adw-send)
#   ADW_CLAUDE        the claude command (default: claude)
#   ADW_STEPS         the steps to run (default: "plan build review document")
#   ADW_BUDGET_USD    the run's budget in US dollars (adw_start's payload.budget_usd): ingest
#                     raises budget_warning at 80 % and budget_exceeded at 100 % of it
#
# adw-send never holds the workflow: if ingest is down, events wait in the spool
# (~/.local/state/adw/spool) and go out, in order, the next time ingest answers.
set -euo pipefail

task=${1:?usage: $0 "what to do"}
here=$(cd "$(dirname "$0")" && pwd)
if [[ -z "${ADW_SEND:-}" ]]; then
    if command -v adw-send >/dev/null; then
        ADW_SEND=adw-send
    else
        ADW_SEND=$here/../build/bin/adw-send
    fi
fi
claude=${ADW_CLAUDE:-claude}
ADW_ID=${ADW_ID:-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')}
export ADW_ID

now_ms() { date +%s%3N; }

send() { "$ADW_SEND" "$@" || true; }

prompt_for() {
    case $1 in
    plan) echo "Read the code and write a short implementation plan to specs/plan.md for: $task" ;;
    build) echo "Implement specs/plan.md. Run the tests until they pass." ;;
    review) echo "Review the change against specs/plan.md. Fix nothing; list problems, if any." ;;
    fix) echo "Fix the problems the review found. Run the tests." ;;
    document) echo "Update the documentation and CHANGELOG.md for the change." ;;
    *) echo "Do the $1 step for: $task" ;;
    esac
}

# Runs one step; returns claude's exit status.
step() {
    local name=$1 start status rc=0
    start=$(now_ms)
    send --event step_start --step "$name" --status running --summary "Step $name started"
    # ADW_STEP reaches Claude Code's hooks too (settings.hooks.json): one swimlane per step.
    ADW_STEP=$name $claude -p "$(prompt_for "$name")" --output-format stream-json --verbose |
        send --stream-json --step "$name" || rc=$?
    [[ $rc -eq 0 ]] && status=completed || status=failed
    send --event step_complete --step "$name" --status "$status" \
        --duration-ms $(($(now_ms) - start)) --summary "Step $name $status"
    return "$rc"
}

run_start=$(now_ms)
payload=$(printf '{"task":"%s","workflow":"adw_example"}' "${task//\"/\\\"}")
if [[ -n "${ADW_BUDGET_USD:-}" ]]; then
    payload=${payload%\}}$(printf ',"budget_usd":%s}' "$ADW_BUDGET_USD")
fi
send --event adw_start --status running --summary "$task" --payload "$payload"
echo "ADW $ADW_ID: $task" >&2
for name in ${ADW_STEPS:-plan build review document}; do
    if ! step "$name"; then
        send --event adw_failed --step "$name" --status failed \
            --duration-ms $(($(now_ms) - run_start)) --summary "Failed in $name"
        echo "ADW $ADW_ID failed in $name" >&2
        exit 1
    fi
done
send --event adw_complete --status completed --duration-ms $(($(now_ms) - run_start)) \
    --summary "Completed: $task"
echo "ADW $ADW_ID completed" >&2
