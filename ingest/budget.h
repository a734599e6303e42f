/* budget: the writer's side of run budgets (proto/http.md, "Budgets"). Each batch, before its
 * ids are assigned, the writer knows every run's budget and spend (a bounded cache of adw_runs'
 * rows, the runs it lacks read in one SELECT on the batch's connection: one writer, so nothing
 * changes them under it); as each fresh event gets its id, budget_fold adds its spend and raises
 * what it crosses (budget_warning, budget_exceeded, and with enforcement budget_denied after a
 * hook's PreToolUse of a run over budget) with the next ids, so that they follow the event that
 * crossed in id order, inside a batch too. The runs' budget columns go in the batch's
 * transaction (budget_send); the cache takes the batch's state only once it commits.
 *
 * While no run has a budget (no default, none stored, no adw_start giving one), nothing is read
 * or sent. Used by the writer thread only (batch.h), on the connection it owns.
 */
#ifndef ADW_BUDGET_H
#define ADW_BUDGET_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "budget_rule.h"
#include "pgwait.h"
#include "store.h"

/* Runs the cache holds at most; past it, it is emptied and filled again from adw_runs. */
#define BUDGET_CACHE_MAX 16384

typedef struct budget_options_t {
    double default_usd; /* the budget of a run whose adw_start gives none; 0: none */
    int enforce;        /* raise budget_denied after a hook's PreToolUse of a run over budget */
    pgwait_t wait;      /* the bound on each answer */
} budget_options_t;

/* One of these per writer: the cache and one batch's state. */
typedef struct budget_t budget_t;

/* Returns a new budget_t (owned by the caller, budget_destroy), or NULL when out of memory. */
budget_t *budget_new(const budget_options_t *o);

/* Frees b. Accepts NULL and sets *b to NULL. */
void budget_destroy(budget_t **b);

/* On a new connection conn (borrowed, schema current): empties the cache, prepares the
 * statement of budget_send, and reads whether any run has a budget. Returns 0, or -EIO with the
 * reason in err. */
int budget_prepare(budget_t *b, PGconn *conn, char *err, size_t errlen);

/* Starts a batch of reqs[0..nreqs) (borrowed; total events), after duplicates are known
 * (ids[i] set) and sessions re-filed: reads from adw_runs, in one SELECT on conn, the runs of
 * the events to store that the cache lacks. Returns 0; -ENOMEM; or -EIO with *failed the
 * SELECT's result (the caller's to classify and PQclear; NULL when it could not be sent). */
int budget_begin(budget_t *b, PGconn *conn, store_req_t **reqs, size_t nreqs, size_t total,
                 PGresult **failed);

/* Folds r->events[i] (fresh, its id assigned) into its run's state for the batch and appends
 * to r->raised what it crosses, each with the next id (++*next). Returns how many events it
 * raised (0..3), or -ENOMEM. */
int budget_fold(budget_t *b, store_req_t *r, size_t i, int64_t *next);

/* Sends (pipeline mode, before the COMMIT or Sync) the statement storing the budget columns of
 * the batch's runs whose budget, budget_warning_id or budget_exceeded_id change. Returns 1 when
 * sent, 0 when there is nothing to store, -1 when it could not be sent. */
int budget_send(budget_t *b, PGconn *conn);

/* The batch committed: the cache takes its runs' state. */
void budget_commit(budget_t *b);

/* The batch did not commit (or its outcome is unknown): the cache is emptied. */
void budget_abort(budget_t *b);

#endif
