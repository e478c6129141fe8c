/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "manager.h"
#include "prefix-policy.h"
#include "time-util.h"

static void jails_free(Jail **jails, size_t n) {
        for (size_t i = 0; i < n; i++)
                jail_free(jails[i]);
        free(jails);
}

static void changes_clear(Manager *m) {
        for (size_t i = 0; i < m->n_changes; i++)
                ban_change_done(&m->changes[i]);
        m->n_changes = 0;
}

Jail *manager_find_jail(Manager *m, const char *name) {
        for (size_t i = 0; i < m->n_jails; i++)
                if (streq(m->jails[i]->config->name, name))
                        return m->jails[i];
        return NULL;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        manager_close_journal(m);
        manager_stop_fleet(m);
        free(m->fleet_directory_open);
        strv_free(m->fleet_saved);
        manager_close_varlink(m);
        manager_forget_logged_bans(m);
        if (journal_sender_queued(m->events) > 0 && journal_sender_flush(m->events, MANAGER_FLUSH_TIMEOUT_USEC) < 0)
                log_warning("journald did not take %zu ban event%s in time; they are lost.",
                            journal_sender_queued(m->events), journal_sender_queued(m->events) == 1 ? "" : "s");
        journal_sender_free(m->events);
        sd_event_source_disable_unref(m->retry_timer);
        sd_event_source_disable_unref(m->expiry_timer);
        sd_event_source_disable_unref(m->save_timer);
        sd_event_source_disable_unref(m->status_timer);
        manager_stop_state_sync(m);
        safe_close(m->notify_fd);
        sd_event_unref(m->event);
        jails_free(m->jails, m->n_jails);
        config_free(m->config);
        free(m->config_file);
        strv_free(m->dropin_dirs);
        free(m->cursor);
        suppression_tracker_free(m->suppression);
        manager_restore_cancel(m);
        nft_monitor_free(m->nft_monitor);
        local_addresses_free(m->local);
        sd_event_source_disable_unref(m->repair_timer);
        nft_set_free(m->nft);
        ban_table_free(m->bans);
        ban_history_free(m->history);
        changes_clear(m);
        free(m->changes);
        free(m->subscribers);
        free(m);
        return NULL;
}

static int on_exit_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        (void) s;
        log_info("Received SIG%s, saving state and exiting.", si->ssi_signo == SIGINT ? "INT" : "TERM");
        (void) sd_notify(false, "STOPPING=1");
        return sd_event_exit(m->event, 0);
}

static int on_reload_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void) s;
        (void) si;
        (void) manager_reload(userdata, NULL);
        return 0;
}

int manager_new(const ManagerOptions *options, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = calloc(1, sizeof(Manager));
        sigset_t mask;
        int r;

        if (!m)
                return log_oom();
        m->options = *options;
        m->started_usec = now_realtime();
        m->state_sync_fd = -EBADF;
        m->notify_fd = -EBADF;

        m->config_file = strdup(options->config_file ?: CONFIG_MAIN_FILE);
        m->dropin_dirs = config_dropin_dirs_for(options->config_file);
        if (!m->config_file || !m->dropin_dirs)
                return log_oom();

        r = ban_table_new(&m->bans);
        if (r < 0)
                return log_oom();
        r = ban_history_new(&m->history);
        if (r < 0)
                return log_oom();

        /* Not sd_event_default(): a default loop checks with gettid() on every iteration that it
         * runs in its thread, a system call per wakeup (a hundred a second during an attack). */
        r = sd_event_new(&m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate event loop: %m");

        r = journal_sender_new(m->event, NULL, &m->events);
        if (r < 0)
                return log_oom();
        journal_sender_set_drained_callback(m->events, manager_on_events_sent, m);

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "Failed to block signals: %m");
        r = sd_event_add_signal(m->event, NULL, SIGTERM, on_exit_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGINT, on_exit_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGHUP, on_reload_signal, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch signals: %m");

        /* Sends WATCHDOG=1 at half of WatchdogSec= when the service manager asks for it. */
        r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                return log_error_errno(r, "Failed to enable the watchdog: %m");

        *ret = TAKE_PTR(m);
        return 0;
}

/* Loads the configuration into a new Config and jail list; nothing of m changes on failure.
 * *ret_message (if given) receives every error, one per line, for a varlink caller. */
static int load_config_and_jails(Manager *m, Config **ret_config, Jail ***ret_jails, size_t *ret_n, char **ret_message) {
        _cleanup_(config_errors_done) ConfigErrors errors = {};
        Config *c = NULL;
        Jail **jails;
        size_t n = 0;
        int r;

        r = config_load(m->config_file, (const char * const *) m->dropin_dirs, &c, &errors);
        if (r < 0) {
                char *message = NULL;
                size_t size = 0;
                FILE *f = ret_message ? open_memstream(&message, &size) : NULL;

                for (size_t i = 0; i < errors.n_errors; i++) {
                        _cleanup_free_ char *text = config_error_to_string(&errors.errors[i]);
                        log_error("%s", text ?: "(out of memory)");
                        if (f)
                                fprintf(f, "%s%s", i > 0 ? "\n" : "", text ?: "(out of memory)");
                }
                if (f) {
                        if (errors.n_errors == 0)
                                fprintf(f, "%s", strerror(-r));
                        fclose(f);
                        *ret_message = message;
                }
                return log_error_errno(r, "Configuration is invalid (%zu error%s), refusing it.",
                                       errors.n_errors, errors.n_errors == 1 ? "" : "s");
        }

        jails = calloc(c->n_jails ? c->n_jails : 1, sizeof(Jail *));
        if (!jails) {
                config_free(c);
                return log_oom();
        }
        for (size_t i = 0; i < c->n_jails; i++) {
                if (!c->jails[i].enabled)
                        continue;
                r = jail_new(&c->jails[i], &jails[n]);
                if (r < 0) {
                        jails_free(jails, n);
                        config_free(c);
                        return log_error_errno(r, "Failed to set up jail %s: %m", c->jails[i].name);
                }
                n++;
        }
        if (n == 0) {
                jails_free(jails, n);
                config_free(c);
                if (ret_message)
                        *ret_message = strdup("No jail is enabled.");
                return log_error_errno(EINVAL, "No jail is enabled in %s or its drop-ins, refusing to run.",
                                       m->config_file);
        }

        *ret_config = c;
        *ret_jails = jails;
        *ret_n = n;
        return 0;
}

static void manager_set_jails(Manager *m, Config *c, Jail **jails, size_t n) {
        config_free(m->config);
        jails_free(m->jails, m->n_jails);
        m->config = c;
        m->jails = jails;
        m->n_jails = n;
        m->max_find_time = 0;
        for (size_t i = 0; i < n; i++)
                m->max_find_time = MAX(m->max_find_time, jails[i]->config->find_time);
}

int manager_load_config(Manager *m) {
        Config *c;
        Jail **jails;
        size_t n;
        int r = load_config_and_jails(m, &c, &jails, &n, NULL);
        if (r < 0)
                return r;
        manager_set_jails(m, c, jails, n);
        return 0;
}

static bool firewall_config_equal(const FirewallConfig *a, const FirewallConfig *b) {
        return streq(a->family, b->family) && streq(a->table, b->table) && streq(a->set4, b->set4) &&
               streq(a->set6, b->set6) && a->create_table == b->create_table;
}

/* Sets up the sets of a changed [Firewall] section; NULL in *ret if it is unchanged. */
static int prepare_firewall(Manager *m, const Config *c, NftSet **ret, char **ret_message) {
        NftSet *nft = NULL;
        int r;

        *ret = NULL;
        if (m->options.dry_run)
                return 0;
        /* Another IPv4Prefix= or IPv6Prefix= may need a prefix set that is not there yet. */
        PrefixLengths new_lengths, old_lengths;
        prefix_policy_lengths(c, &new_lengths);
        prefix_policy_lengths(m->config, &old_lengths);
        if (firewall_config_equal(&c->firewall, &m->config->firewall) &&
            memcmp(&new_lengths, &old_lengths, sizeof(PrefixLengths)) == 0)
                return 0;
        r = manager_nft_new(c, &nft);
        if (r >= 0)
                r = nft_set_ensure(nft);
        if (r < 0) {
                log_error_errno(r, "New [Firewall] settings cannot be applied (%s); keeping the previous "
                                "configuration.", nft ? nft_set_error(nft) : "libnftables failed");
                if (ret_message && asprintf(ret_message, "[Firewall] settings cannot be applied: %s",
                                            nft ? nft_set_error(nft) : strerror(-r)) < 0)
                        *ret_message = NULL;
                nft_set_free(nft);
                return r;
        }
        *ret = nft;
        return 0;
}

/* Everything the new configuration needs is set up before anything of the old one is let go:
 * a step that fails (invalid files, a [Firewall] that cannot be applied, a journal that cannot
 * be opened) keeps the daemon running as it was, and the caller is told. */
int manager_reload(Manager *m, char **ret_message) {
        _cleanup_(manager_journal_done) ManagerJournal journal = {};
        NftSet *nft = NULL;
        Config *c = NULL;
        Jail **jails = NULL;
        size_t n = 0;
        int r;

        (void) sd_notify(false, "RELOADING=1\nSTATUS=Reloading configuration...");
        log_info("Reloading configuration from %s.", m->config_file);

        /* Finish the batch in flight under the old configuration first. */
        (void) manager_commit(m, MANAGER_SAVE_NOW);

        r = load_config_and_jails(m, &c, &jails, &n, ret_message);
        if (r < 0) {
                log_error("Keeping the previous configuration.");
                goto finish;
        }
        r = prepare_firewall(m, c, &nft, ret_message);
        if (r < 0)
                goto refuse;
        r = manager_prepare_journal(m, jails, n, &journal);
        if (r < 0) {
                log_error("Keeping the previous configuration.");
                if (ret_message && !*ret_message && asprintf(ret_message, "Cannot open the journal: %s", strerror(-r)) < 0)
                        *ret_message = NULL;
                goto refuse;
        }

        for (size_t i = 0; i < n; i++) {
                Jail *old = manager_find_jail(m, jails[i]->config->name);
                if (old && jail_take_failures(jails[i], old) < 0)
                        log_warning("Failed to carry failure counts of jail %s over, ignoring.", jails[i]->config->name);
        }

        manager_set_jails(m, c, jails, n);
        r = manager_attach_journal(m, &journal);
        if (r >= 0)
                r = manager_start_fleet(m);
        if (r < 0) {
                /* Only an allocation or epoll can fail here, after the point of no return. */
                (void) sd_event_exit(m->event, r);
                return r;
        }
        if (nft) {
                nft_set_free(m->nft);
                m->nft = nft;
        }
        (void) manager_lift_ignored_bans(m);
        manager_request_reconcile(m);
        m->state_dirty = true;
        (void) manager_commit(m, MANAGER_SAVE_NOW);
        log_info("Configuration reloaded: %zu jail%s.", n, n == 1 ? "" : "s");
        goto finish;

refuse:
        nft_set_free(nft);
        jails_free(jails, n);
        config_free(c);
finish:
        (void) sd_notify(false, "READY=1");
        manager_send_status(m);
        return r;
}

/* Without AF_NETLINK (a sandbox), or with a kernel that does not answer, the daemon still runs:
 * loopback stays exempt, and the warning says what is lost. */
int manager_watch_local_addresses(Manager *m) {
        int r;

        r = local_addresses_new(manager_on_local_address, m, &m->local);
        if (r < 0)
                return log_oom();
        r = local_addresses_watch(m->local, m->event);
        if (r < 0) {
                log_warning_errno(r, "Cannot list this host's own addresses (rtnetlink): only loopback is exempt "
                                  "from bans, ignoring: %m");
                m->local = local_addresses_free(m->local);
                return 0;
        }
        log_debug("%zu address%s configured on this host %s exempt from bans.", local_addresses_size(m->local),
                  local_addresses_size(m->local) == 1 ? "" : "es", local_addresses_size(m->local) == 1 ? "is" : "are");
        return 0;
}

int manager_run(Manager *m) {
        int r;

        (void) sd_notify(false, "READY=1");
        manager_send_status(m);
        log_info("vpopguardd " VPOPGUARD_VERSION " running: %zu jail%s%s.", m->n_jails, m->n_jails == 1 ? "" : "s",
                 m->options.dry_run ? ", dry run (the firewall is not touched)" : "");

        r = sd_event_loop(m->event);

        /* Whatever was read before the signal is committed, so a restart resumes right after it. */
        int k = manager_commit(m, MANAGER_SAVE_NOW);
        if (r >= 0 && k < 0)
                r = k;
        return r;
}
