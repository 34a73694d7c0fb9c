/* CUDA graph capture bookkeeping: state, refusals and error carrying. */
#include "gpu/graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"

void gpu_graph_state_init(gpu_graph_state *s, const gpu_graph_driver *drv)
{
    memset(s, 0, sizeof *s);
    s->drv = *drv;
}

bool gpu_graph_state_capturing(const gpu_graph_state *s) { return s->capturing; }

/* Remembers the first failure of the open capture. */
static void record(gpu_graph_state *s, const char *op, int rc)
{
    if (s->err)
        return;
    s->err = rc;
    snprintf(s->msg, sizeof s->msg, "operation %lld (%s): %s", (long long)s->ops, op, eng_last_error());
}

int gpu_graph_state_begin(gpu_graph_state *s)
{
    if (s->capturing)
        return eng_error(ENG_EINVAL, "gpu graph: capture already open on this backend");
    int rc = s->drv.begin(s->drv.ctx);
    if (rc < 0)
        return rc;
    s->capturing = true;
    s->err = 0;
    s->msg[0] = '\0';
    s->ops = 0;
    s->dyn = 0;
    return 0;
}

int gpu_graph_state_enter(gpu_graph_state *s, const char *op, gpu_op_class cls)
{
    if (!s->capturing)
        return 0;
    if (cls == GPU_OP_HOST) {
        int rc = eng_error(ENG_EINVAL, "gpu graph: %s is not allowed while capturing (it allocates or waits on the host)",
                           op);
        record(s, op, rc);
        return rc;
    }
    if (cls == GPU_OP_ADAM)
        s->dyn |= GPU_DYN_ADAM;
    else if (cls == GPU_OP_SGD)
        s->dyn |= GPU_DYN_SGD;
    s->ops++;
    return 0;
}

int gpu_graph_state_leave(gpu_graph_state *s, const char *op, int rc)
{
    if (rc < 0 && s->capturing)
        record(s, op, rc);
    return rc;
}

int gpu_graph_state_end(gpu_graph_state *s, gpu_graph **out)
{
    *out = NULL;
    if (!s->capturing)
        return eng_error(ENG_EINVAL, "gpu graph: no capture is open on this backend");
    s->capturing = false;
    void *graph = NULL, *exec = NULL;
    int rc = s->drv.end(s->drv.ctx, &graph); /* always ends the capture, even after a failure */
    if (s->err) {
        if (graph)
            s->drv.destroy(s->drv.ctx, graph, NULL);
        return eng_error(s->err, "gpu graph: capture failed at %s", s->msg);
    }
    if (rc < 0) {
        if (graph)
            s->drv.destroy(s->drv.ctx, graph, NULL);
        return rc;
    }
    rc = s->drv.instantiate(s->drv.ctx, graph, &exec);
    if (rc < 0) {
        s->drv.destroy(s->drv.ctx, graph, NULL);
        return rc;
    }
    gpu_graph *g = malloc(sizeof *g);
    if (!g) {
        s->drv.destroy(s->drv.ctx, graph, exec);
        return eng_error(ENG_ENOMEM, "gpu graph: out of memory");
    }
    *g = (gpu_graph){.owner = s, .graph = graph, .exec = exec, .ops = s->ops, .dyn = s->dyn};
    s->live++;
    *out = g;
    return 0;
}

int gpu_graph_state_launch(gpu_graph_state *s, gpu_graph *g, const gpu_step_args *args)
{
    if (!g)
        return eng_error(ENG_EINVAL, "gpu graph: launch of a NULL graph");
    if (g->owner != s)
        return eng_error(ENG_EINVAL, "gpu graph: the graph belongs to another backend");
    if (s->capturing)
        return eng_error(ENG_EINVAL, "gpu graph: cannot launch a graph while capturing");
    if (g->dyn) {
        if (!args)
            return eng_error(ENG_EINVAL, "gpu graph: the graph holds an optimiser step; launch needs its arguments");
        int rc = s->drv.set_args(s->drv.ctx, args, g->dyn);
        if (rc < 0)
            return rc;
    }
    return s->drv.launch(s->drv.ctx, g->exec);
}

void gpu_graph_state_free(gpu_graph *g)
{
    if (!g)
        return;
    gpu_graph_state *s = g->owner;
    s->drv.destroy(s->drv.ctx, g->graph, g->exec);
    s->live--;
    free(g);
}
