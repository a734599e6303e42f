/* adw-send: what an agent or a hook runs to push one event (or many) to adw-ingest.
 *
 * Modes: one event from flags; --json, whole events from stdin; --hook, a Claude Code hook's
 * stdin JSON; --stream-json, `claude -p --output-format stream-json --verbose` output, sent
 * line by line as it arrives. It never holds the agent longer than --timeout-ms (for
 * --stream-json: per send), and exits 0 unless --strict.
 *
 * This file is the checklist: options (opts.c), --make-cert, the client, signals, then the
 * mode (mode_*.c) and the exit code its tally gives (run.c). */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "config.h"
#include "log.h"
#include "mode.h"
#include "opts.h"
#include "run.h"
#include "timefmt.h"

static void on_signal(int sig)
{
    (void)sig;
    run_stopping = 1;
}

/* The default spool directory, in buf. Returns buf, or NULL when no home is known. */
static const char *default_spool(char *buf, size_t len)
{
    const char *state = getenv("XDG_STATE_HOME");
    if (state && *state == '/') {
        snprintf(buf, len, "%s/adw/spool", state);
        return buf;
    }
    const char *home = getenv("HOME");
    if (!home || !*home) {
        struct passwd *pw = getpwuid(getuid());
        home = pw ? pw->pw_dir : NULL;
    }
    if (!home || !*home)
        return NULL;
    snprintf(buf, len, "%s/.local/state/adw/spool", home);
    return buf;
}

int main(int argc, char **argv)
{
    int64_t start = timefmt_mono_us();
    run_t s = {.opt = SEND_OPTIONS_INIT};
    char err[CLIENT_ERR_LEN];
    int rc =
        config_start(send_opts_program(), &s.opt, argc, argv, &s.opt.log_level, &s.opt.log_format);
    if (rc)
        return rc == CONFIG_EXIT ? 0 : SEND_EXIT_USAGE;
    s.deadline_us = start + s.opt.timeout_ms * 1000;
    if (s.opt.make_cert) {
        if (client_cert_make(s.opt.make_cert, err, sizeof err)) {
            fprintf(stderr, "adw-send: %s\n", err);
            return 1;
        }
        printf("public certificate: %s\nsecret certificate: %s_secret\n", s.opt.make_cert,
               s.opt.make_cert);
        return 0;
    }

    /* Check the usage: one mode, one transport, event flags only with the flags mode. */
    if (send_opts_check(&s.opt, argc, argv, err, sizeof err)) {
        fprintf(stderr, "adw-send: %s\n", err);
        return SEND_EXIT_USAGE;
    }
    client_options_t co;
    char spool[4096];
    if (send_opts_client(&s.opt, argc, argv, &co))
        co.spool_dir = default_spool(spool, sizeof spool);

    client_err_t why;
    s.client = client_new(&co, &why, err, sizeof err);
    if (!s.client && why == CLIENT_ERR_NOMEM) {
        /* Not a usage error: the event is lost, and only --strict says so in the exit code. */
        log_error("%s; the event(s) were not sent", err);
        s.tally.lost++;
        return run_exit_code(&s);
    }
    if (!s.client) {
        fprintf(stderr, "adw-send: %s\n", err);
        return SEND_EXIT_USAGE;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (s.opt.json)
        rc = mode_json_send(&s);
    else if (s.opt.hook)
        rc = mode_hook_send(&s);
    else if (s.opt.stream_json)
        rc = mode_stream_send(&s);
    else
        rc = mode_flags_send(&s);
    client_destroy(&s.client);
    if (rc == -EINVAL)
        return SEND_EXIT_USAGE;
    if (rc)
        s.tally.lost++;
    return run_exit_code(&s);
}
