/* Validation of the `train:` section into eng_train_desc. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "schema/validate.h"

const char *const spec_train_keys[] = {"epochs",    "loss",      "optimizer",        "grad_clip", "warmup_epochs",
                                       "schedule",  "top_k",     "precision",        "checkpoint_every",
                                       "keep_best", "stop_on_nonfinite"};
const int spec_n_train_keys = V_NELEM(spec_train_keys);
const char *const spec_optimizer_keys[] = {"name", "lr", "betas", "eps", "weight_decay", "momentum", "nesterov"};
const int spec_n_optimizer_keys = V_NELEM(spec_optimizer_keys);

static const vrange positive = {0, INFINITY, true, false};
static const vrange nonneg = {0, INFINITY, false, false};


static void v_optimizer(vctx *c, const ynode *n, eng_train_desc *t)
{
    static const char *const names[] = {[ENG_OPT_ADAM] = "adam", [ENG_OPT_ADAMW] = "adamw", [ENG_OPT_SGD] = "sgd"};
    const char *path = "train.optimizer";
    char p[SPEC_PATH_LEN], q[SPEC_PATH_LEN];
    if (!vn_map(c, n, path, "{name: adam, lr: 1.0e-3, ...}"))
        return;
    v_check_keys(c, n, path, spec_optimizer_keys, spec_n_optimizer_keys, NULL, NULL);
    int k = ENG_OPT_ADAM;
    if (v_enum(c, n, path, "name", names, V_NELEM(names), &k) == V_BAD)
        k = -1;
    else
        t->optimizer = (eng_optimizer_kind)k;
    v_num(c, n, path, "lr", positive, &t->lr);
    v_num(c, n, path, "weight_decay", nonneg, &t->weight_decay);
    bool adam = k == ENG_OPT_ADAM || k == ENG_OPT_ADAMW, sgd = k == ENG_OPT_SGD;
    char why[96];
    snprintf(why, sizeof why, "only for adam and adamw, not %s", k >= 0 ? names[k] : "this optimizer");
    if (k >= 0 && !adam) {
        v_not_here(c, n, path, "betas", why);
        v_not_here(c, n, path, "eps", why);
    } else {
        const ynode *b = vget(c, n, path, "betas", p);
        if (b && vn_seq(c, b, p, "of two numbers [beta1, beta2]")) {
            if (b->n != 2) {
                vctx_error(c, b->line, b->col, p, "expected two numbers [beta1, beta2], found %lld",
                           (long long)b->n);
            } else {
                float v[2];
                bool ok = true;
                for (int i = 0; i < 2; i++) {
                    vpath_index(q, p, i);
                    vctx_record(c, q, b->v[i]);
                    ok &= vn_float(c, b->v[i], q, (vrange){0, 1, false, true}, &v[i]) == V_OK;
                }
                if (ok) {
                    t->beta1 = v[0];
                    t->beta2 = v[1];
                }
            }
        }
        v_num(c, n, path, "eps", positive, &t->eps);
    }
    snprintf(why, sizeof why, "only for sgd, not %s", k >= 0 ? names[k] : "this optimizer");
    if (k >= 0 && !sgd) {
        v_not_here(c, n, path, "momentum", why);
        v_not_here(c, n, path, "nesterov", why);
    } else {
        v_num(c, n, path, "momentum", (vrange){0, 1, false, true}, &t->momentum);
        if (v_bool(c, n, path, "nesterov", &t->nesterov) == V_OK && t->nesterov && t->momentum <= 0) {
            const ynode *nn = yn_map_get(n, "nesterov");
            vctx_error(c, nn->line, nn->col, "train.optimizer.nesterov", "needs momentum > 0 (as torch.optim.SGD)");
        }
    }
}

static void v_schedule(vctx *c, const ynode *n, eng_train_desc *t, const ynode **min_lr_node)
{
    static const char *const names[] = {[ENG_SCHED_CONSTANT] = "constant", [ENG_SCHED_COSINE] = "cosine",
                                        [ENG_SCHED_STEP] = "step"};
    const char *path = "train.schedule";
    char found[96], p[SPEC_PATH_LEN];
    int k;
    if (n->kind == YN_SCALAR && !yn_is_null(n)) {
        if (vn_enum(c, n, path, names, V_NELEM(names), &k) != V_OK)
            return;
        if (k == ENG_SCHED_STEP) {
            vctx_error(c, n->line, n->col, path,
                       "step needs its settings: {name: step, step_epochs: N, gamma: G}");
            return;
        }
        t->schedule = (eng_schedule_kind)k;
        return;
    }
    if (n->kind != YN_MAP) {
        vctx_error(c, n->line, n->col, path,
                   "expected constant, cosine, {name: step, step_epochs: N, gamma: G} or {name: cosine, min_lr: X}, "
                   "found %s",
                   vdescribe(n, found, sizeof found));
        return;
    }
    static const char *const keys[] = {"name", "step_epochs", "gamma", "min_lr"};
    v_check_keys(c, n, path, keys, V_NELEM(keys), NULL, NULL);
    int rc = v_enum(c, n, path, "name", names, V_NELEM(names), &k);
    if (rc == V_ABSENT)
        v_missing(c, n, path, "name", "(constant, cosine or step)");
    if (rc != V_OK)
        return;
    t->schedule = (eng_schedule_kind)k;
    if (k != ENG_SCHED_STEP) {
        v_not_here(c, n, path, "step_epochs", "only for the step schedule");
        v_not_here(c, n, path, "gamma", "only for the step schedule");
    } else {
        if (v_int(c, n, path, "step_epochs", 1, INT64_MAX, &t->step_epochs) == V_ABSENT)
            v_missing(c, n, path, "step_epochs", "(the learning rate is multiplied by gamma every step_epochs epochs)");
        v_num(c, n, path, "gamma", (vrange){0, 1, true, false}, &t->gamma);
    }
    if (k != ENG_SCHED_COSINE)
        v_not_here(c, n, path, "min_lr", "only for the cosine schedule");
    else if (v_num(c, n, path, "min_lr", nonneg, &t->min_lr) == V_OK)
        *min_lr_node = vget(c, n, path, "min_lr", p);
}

void v_train(vctx *c, const ynode *node, spec *s, bool *precision_gpu, const ynode **precision_node)
{
    eng_train_desc *t = &s->train;
    const char *path = "train";
    char p[SPEC_PATH_LEN];
    *precision_gpu = false;
    *precision_node = NULL;
    if (!vn_map(c, node, path, "(epochs, optimizer, schedule, ...)"))
        return;
    v_check_keys(c, node, path, spec_train_keys, spec_n_train_keys, NULL, NULL);
    v_int(c, node, path, "epochs", 1, 1000000, &t->epochs);
    static const char *const losses[] = {"cross_entropy"};
    int e;
    v_enum(c, node, path, "loss", losses, V_NELEM(losses), &e);
    const ynode *n, *min_lr = NULL;
    if ((n = vget(c, node, path, "optimizer", p)))
        v_optimizer(c, n, t);
    v_num(c, node, path, "grad_clip", nonneg, &t->grad_clip);
    v_num(c, node, path, "warmup_epochs", nonneg, &t->warmup_epochs);
    if ((n = vget(c, node, path, "schedule", p)))
        v_schedule(c, n, t, &min_lr);
    if (min_lr && t->min_lr >= t->lr)
        vctx_error(c, min_lr->line, min_lr->col, "train.schedule.min_lr",
                   "expected a number below the learning rate (%g), found %s", (double)t->lr, min_lr->s);
    v_int(c, node, path, "top_k", 1, 1 << 20, &t->top_k);
    static const char *const precs[] = {[ENG_PREC_FP32] = "fp32", [ENG_PREC_TF32] = "tf32", [ENG_PREC_BF16] = "bf16"};
    if (v_enum(c, node, path, "precision", precs, V_NELEM(precs), &e) == V_OK) {
        t->precision = (eng_precision)e;
        *precision_gpu = e == ENG_PREC_TF32; /* bf16 also runs on the CPU */
        *precision_node = yn_map_get(node, "precision");
    }
    v_int(c, node, path, "checkpoint_every", 1, INT64_MAX, &t->checkpoint_every);
    v_bool(c, node, path, "keep_best", &t->keep_best);
    v_bool(c, node, path, "stop_on_nonfinite", &t->stop_on_nonfinite);
}
