/* The shared run loop: backend, trainer, resume, checkpoints, events. */
#include "service/session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/error.h"
#include "service/backend_select.h"
#include "service/data_prep.h"
#include "service/error.h"
#include "service/paths.h"
#include "service/test_hold.h"

/* Records a failure: code (SVC_E*), whether a retry may help, and why. */
static void fail(svc_outcome *out, int code, const char *what, const char *why)
{
    out->err = code;
    out->retryable = code == SVC_EIO || code == SVC_ENOMEM || code == SVC_EINTERNAL;
    snprintf(out->error, sizeof out->error, "%s%s%s", what ? what : "", what ? ": " : "", why);
}

static void fail_engine(svc_outcome *out, int eng_rc, const char *what)
{
    fail(out, svc_from_engine(eng_rc), what, eng_last_error());
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
        return svc_error(SVC_EIO, "cannot link %s to %s: %s", last, tmp, strerror(errno));
    if (rename(tmp, best) < 0) {
        int e = errno;
        unlink(tmp);
        return svc_error(SVC_EIO, "cannot rename %s to %s: %s", tmp, best, strerror(e));
    }
    return 0;
}

/* The device the job runs on: the job's override, else the spec's. */
static const char *job_device(const svc_session_job *job, char *buf, size_t len)
{
    if (job->device && *job->device)
        return job->device;
    const spec *sp = job->spec;
    if (sp->device == SPEC_DEVICE_CUDA && sp->device_index >= 0) {
        snprintf(buf, len, "cuda:%d", sp->device_index);
        return buf;
    }
    return spec_device_name(sp->device);
}

/* Says once per run whether the training step replays as a graph (the log). */
static void log_graph_use(eng_trainer *t)
{
    eng_graph_stats gs;
    eng_trainer_graph_stats(t, &gs);
    if (gs.captured)
        fprintf(stderr, "epochd: training step captured as a graph: %lld replays, %lld steps op by op\n",
                (long long)gs.replays, (long long)gs.eager_steps);
    else
        fprintf(stderr, "epochd: training step not captured as a graph: %s\n",
                gs.off_reason[0] ? gs.off_reason : "no full batch yet");
}

/* Writes the epoch's checkpoint when the schedule asks for one (and keeps
 * the best); *written is the file, or NULL when this epoch wrote none. */
static int checkpoint_epoch(const svc_session_job *job, const eng_train_desc *train, eng_trainer *t,
                            const eng_epoch_stats *s, const char *dir, const char *last, svc_outcome *out,
                            const char **written)
{
    *written = NULL;
    bool last_epoch = s->epoch == train->epochs;
    if (train->checkpoint_every <= 0 || (s->epoch % train->checkpoint_every != 0 && !last_epoch))
        return 0;
    char *classes = svc_classes_json(job->spec);
    eng_kv meta[] = {{"run", job->key}, {"name", job->spec->name}, {"spec_sha256", job->spec->sha256},
                     {"classes", classes}};
    int rc = eng_trainer_save(t, last, meta, classes ? 4 : 3);
    free(classes);
    if (rc < 0) {
        fail_engine(out, rc, "cannot write the checkpoint");
        return -1;
    }
    *written = last;
    snprintf(out->checkpoint, sizeof out->checkpoint, "%s", last);
    int64_t best_epoch;
    eng_trainer_best_acc(t, &best_epoch);
    if (train->keep_best && best_epoch == s->epoch && (rc = link_best(dir, last)) < 0) {
        fail(out, rc, "cannot keep the best checkpoint", svc_last_error());
        return -1;
    }
    return 0;
}

void svc_session_run(const svc_session_job *job, const svc_session_sink *sink, svc_outcome *out)
{
    memset(out, 0, sizeof *out);
    const spec *sp = job->spec;
    eng_train_desc train = sp->train;
    if (job->epochs > 0)
        train.epochs = job->epochs;

    char dir[1024], last[1100], devbuf[32];
    int rc = svc_run_dir_make(job->state_dir, job->key, dir, sizeof dir);
    if (rc < 0) {
        fail(out, rc, NULL, svc_last_error());
        return;
    }
    snprintf(last, sizeof last, "%s/last.safetensors", dir);

    eng_backend *b = NULL;
    if ((rc = svc_backend_open(job_device(job, devbuf, sizeof devbuf), train.precision, job->threads, &b)) < 0) {
        fail(out, rc, NULL, svc_last_error());
        return;
    }
    eng_data_desc data = sp->data;
    if (svc_prepare_data(job, &data, out) < 0) {
        eng_backend_free(b);
        return;
    }
    eng_trainer *t = NULL;
    if ((rc = eng_trainer_new(&data, &sp->model, &train, b, &t)) < 0) {
        fail_engine(out, rc, "cannot start training");
        eng_backend_free(b);
        return;
    }
    int64_t resumed = 0;
    if (job->resume && access(last, F_OK) == 0) {
        if ((rc = eng_trainer_load(t, last)) < 0) {
            fail_engine(out, rc, "cannot resume from the last checkpoint");
            out->damaged_checkpoint = rc == ENG_EFORMAT || rc == ENG_EINVAL || rc == ENG_ELIMIT;
            goto done;
        }
        resumed = eng_trainer_epochs_done(t);
        snprintf(out->checkpoint, sizeof out->checkpoint, "%s", last);
    }
    if (sink->started) {
        svc_started_info info = {.device = b->name, .params = eng_model_param_count(eng_trainer_model(t)),
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
        if ((rc = svc_test_hold(sp->name, eng_trainer_epochs_done(t) + 1, job->stop)) < 0) {
            fail(out, rc, NULL, svc_last_error());
            goto done;
        }
        if ((rc = eng_trainer_run_epoch(t, &hooks, &s)) < 0) {
            /* diverged: the message is the run's error ("diverged: train loss is NaN at ...") */
            fail_engine(out, rc, rc == ENG_EINTR ? "interrupted" : rc == ENG_EDIVERGED ? NULL : "training failed");
            goto done;
        }
        if (b->graph && s.epoch == resumed + 1)
            log_graph_use(t);
        const char *ck;
        if (checkpoint_epoch(job, &train, t, &s, dir, last, out, &ck) < 0)
            goto done;
        int64_t best_epoch;
        eng_trainer_best_acc(t, &best_epoch);
        if (sink->epoch && (rc = sink->epoch(sink->ctx, &s, ck, best_epoch)) < 0) {
            char what[64];
            snprintf(what, sizeof what, "cannot record epoch %lld", (long long)s.epoch);
            fail(out, rc, what, svc_last_error());
            out->retryable = true; /* the record failed, not the run */
            goto done;
        }
    }
    out->err = 0;

done:
    out->epochs_done = eng_trainer_epochs_done(t);
    out->best_acc = eng_trainer_best_acc(t, &out->best_epoch);
    eng_trainer_free(t);
    eng_backend_free(b);
}
