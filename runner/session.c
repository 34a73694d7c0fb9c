/* The shared run loop: backend, trainer, checkpoints, events. */
#include "runner/session.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine/error.h"
#include "runner/backend_select.h"
#include "runner/commands.h"
#include "runner/paths.h"

/* Maps an engine error to an exit code and whether a retry may help. */
static void classify(int rc, run_outcome *out)
{
    out->retryable = false;
    switch (rc) {
    case ENG_EINTR:
        out->code = RUN_EX_INTERRUPTED;
        out->interrupted = true;
        break;
    case ENG_ENOENT: out->code = RUN_EX_NOINPUT; break;
    case ENG_EDIVERGED: /* the spec's setting diverges: a retry diverges again */
    case ENG_EINVAL:
    case ENG_EFORMAT:
    case ENG_ELIMIT:
    case ENG_ENOTSUP: out->code = RUN_EX_DATAERR; break;
    case ENG_EIO:
        out->code = RUN_EX_IOERR;
        out->retryable = true;
        break;
    default: /* ENG_ENOMEM, ENG_EDEVICE, unknown */
        out->code = RUN_EX_SOFTWARE;
        out->retryable = true;
        break;
    }
}

static void fail(run_outcome *out, int rc, const char *what)
{
    classify(rc, out);
    snprintf(out->error, sizeof out->error, "%s: %s", what, eng_last_error());
}

/* Keeps best.safetensors as a hard link to the checkpoint that set the best
 * accuracy (no second write), replaced atomically. */
static int link_best(const char *dir, const char *last)
{
    char tmp[1100], best[1100];
    snprintf(tmp, sizeof tmp, "%s/best.safetensors.tmp", dir);
    snprintf(best, sizeof best, "%s/best.safetensors", dir);
    unlink(tmp);
    if (link(last, tmp) < 0)
        return eng_error(ENG_EIO, "cannot link %s to %s: %s", last, tmp, strerror(errno));
    if (rename(tmp, best) < 0) {
        int e = errno;
        unlink(tmp);
        return eng_error(ENG_EIO, "cannot rename %s to %s: %s", tmp, best, strerror(e));
    }
    return 0;
}

void run_session(const run_job *job, const run_sink *sink, run_outcome *out)
{
    memset(out, 0, sizeof *out);
    const spec *sp = job->spec;
    eng_train_desc train = sp->train;
    if (job->epochs > 0)
        train.epochs = job->epochs;

    char dir[1024], last[1100];
    if (run_checkpoint_dir(job->state_dir, job->key, dir, sizeof dir) < 0) {
        out->code = RUN_EX_SOFTWARE;
        snprintf(out->error, sizeof out->error, "state directory path too long: %s", job->state_dir);
        return;
    }
    snprintf(last, sizeof last, "%s/last.safetensors", dir);
    int mk = run_mkdirs(dir, 0750);
    if (mk < 0) {
        out->code = RUN_EX_IOERR;
        out->retryable = true;
        snprintf(out->error, sizeof out->error, "cannot create %s: %s", dir, strerror(-mk));
        return;
    }

    const char *device = job->device && *job->device ? job->device : NULL;
    char devbuf[32];
    if (!device) {
        if (sp->device == SPEC_DEVICE_CUDA && sp->device_index >= 0) {
            snprintf(devbuf, sizeof devbuf, "cuda:%d", sp->device_index);
            device = devbuf;
        } else {
            device = spec_device_name(sp->device);
        }
    }
    eng_backend *b = NULL;
    char err[1024];
    int rc = run_backend_open(device, train.precision, job->threads, &b, err, sizeof err);
    if (rc < 0) {
        classify(rc, out);
        snprintf(out->error, sizeof out->error, "%s", err);
        return;
    }

    eng_trainer *t = NULL;
    rc = eng_trainer_new(&sp->data, &sp->model, &train, b, &t);
    if (rc < 0) {
        fail(out, rc, "cannot start training");
        eng_backend_free(b);
        return;
    }
    int64_t resumed = 0;
    if (job->resume && access(last, F_OK) == 0) {
        rc = eng_trainer_load(t, last);
        if (rc < 0) {
            fail(out, rc, "cannot resume from the last checkpoint");
            goto done;
        }
        resumed = eng_trainer_epochs_done(t);
        snprintf(out->checkpoint, sizeof out->checkpoint, "%s", last);
    }
    if (sink->started) {
        run_started_info info = {.device = b->name, .params = eng_model_param_count(eng_trainer_model(t)),
                                 .epochs = train.epochs, .steps_per_epoch = eng_trainer_steps_per_epoch(t),
                                 .train_samples = eng_trainer_train_samples(t),
                                 .test_samples = eng_trainer_test_samples(t), .resumed_epoch = resumed,
                                 .threads = b->threads};
        sink->started(sink->ctx, &info);
    }

    eng_train_hooks hooks = {.ctx = sink->ctx, .progress = sink->progress, .progress_interval = 0.5,
                             .stop = job->stop};
    while (eng_trainer_epochs_done(t) < train.epochs) {
        eng_epoch_stats s;
        rc = eng_trainer_run_epoch(t, &hooks, &s);
        if (rc < 0) {
            if (rc == ENG_EDIVERGED) { /* the message is the run's error: "diverged: train loss is NaN at ..." */
                classify(rc, out);
                snprintf(out->error, sizeof out->error, "%s", eng_last_error());
                goto done;
            }
            fail(out, rc, rc == ENG_EINTR ? "interrupted" : "training failed");
            goto done;
        }
        if (b->graph && s.epoch == resumed + 1) {
            /* whether the step replays as a CUDA graph, once per run, for the log */
            eng_graph_stats gs;
            eng_trainer_graph_stats(t, &gs);
            if (gs.captured)
                fprintf(stderr, "epochd: training step captured as a graph: %lld replays, %lld steps op by op\n",
                        (long long)gs.replays, (long long)gs.eager_steps);
            else
                fprintf(stderr, "epochd: training step not captured as a graph: %s\n",
                        gs.off_reason[0] ? gs.off_reason : "no full batch yet");
        }
        const char *ck = NULL;
        bool last_epoch = s.epoch == train.epochs;
        if (train.checkpoint_every > 0 && (s.epoch % train.checkpoint_every == 0 || last_epoch)) {
            char key_epoch[32];
            snprintf(key_epoch, sizeof key_epoch, "%lld", (long long)s.epoch);
            eng_kv meta[] = {{"run", job->key}, {"name", sp->name}, {"spec_sha256", sp->sha256}};
            rc = eng_trainer_save(t, last, meta, 3);
            if (rc < 0) {
                fail(out, rc, "cannot write the checkpoint");
                goto done;
            }
            ck = last;
            snprintf(out->checkpoint, sizeof out->checkpoint, "%s", last);
            int64_t best_epoch;
            eng_trainer_best_acc(t, &best_epoch);
            if (train.keep_best && best_epoch == s.epoch && (rc = link_best(dir, last)) < 0) {
                fail(out, rc, "cannot keep the best checkpoint");
                goto done;
            }
        }
        int64_t best_epoch;
        eng_trainer_best_acc(t, &best_epoch);
        if (sink->epoch && sink->epoch(sink->ctx, &s, ck, best_epoch) < 0) {
            out->code = RUN_EX_SOFTWARE;
            out->retryable = true;
            snprintf(out->error, sizeof out->error, "cannot record epoch %lld", (long long)s.epoch);
            goto done;
        }
    }
    out->code = RUN_EX_OK;

done:
    out->epochs_done = eng_trainer_epochs_done(t);
    out->best_acc = eng_trainer_best_acc(t, &out->best_epoch);
    eng_trainer_free(t);
    eng_backend_free(b);
}
