/*
 * async.c - the Promise forms: a job runs its libquartz call on libuv's
 * thread pool (napi_async_work), off the main thread, and settles its
 * Promise back on the main thread.
 *
 * Inputs are copied (or owned) by the job before it is queued, so JS code
 * may change or transfer its arrays while the job runs. Outputs go into
 * ArrayBuffers created before queueing and kept alive by job->keep; no JS
 * code can see them until the Promise resolves.
 *
 * qz_errmsg() is thread-local, so a failure's message is copied on the pool
 * thread, right after the failed call, into job->message.
 */
#include <stdlib.h>
#include <string.h>

#include "qzn.h"

static void execute(napi_env env, void *data)
{
    (void)env; /* must not touch JS here */
    qzn_job *job = data;
    job->status = job->execute(job);
    if (job->status < 0) {
        strncpy(job->message, qz_errmsg(), sizeof job->message - 1);
        job->message[sizeof job->message - 1] = 0;
    }
}

static void complete(napi_env env, napi_status st, void *data)
{
    qzn_job *job = data;
    napi_value result = NULL, err = NULL;
    if (job->h) job->h->pending--;
    if (st == napi_cancelled) {
        err = qzn_error_new(env, QZ_EBUSY, "the job was cancelled");
    } else if (job->status < 0) {
        err = qzn_error_new(env, job->status, job->message);
    } else {
        result = job->resolve ? job->resolve(env, job) : NULL;
        if (!job->resolve) napi_get_undefined(env, &result);
        if (!result) {
            bool pending = false;
            napi_is_exception_pending(env, &pending);
            if (pending) napi_get_and_clear_last_exception(env, &err);
            else err = qzn_error_new(env, QZ_ENOMEM, "could not build the result");
        }
    }
    if (err) napi_reject_deferred(env, job->deferred, err);
    else napi_resolve_deferred(env, job->deferred, result);
    if (job->release) job->release(job);
    if (job->self) napi_delete_reference(env, job->self);
    if (job->keep) napi_delete_reference(env, job->keep);
    napi_delete_async_work(env, job->work);
    free(job);
}

napi_value qzn_job_queue(napi_env env, qzn_job *job, const char *name, napi_value self, qzn_db *h)
{
    napi_value promise, res_name;
    job->h = h;
    if (napi_create_promise(env, &job->deferred, &promise) != napi_ok) goto fail;
    if (self && napi_create_reference(env, self, 1, &job->self) != napi_ok) goto fail;
    if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &res_name) != napi_ok) goto fail;
    if (napi_create_async_work(env, NULL, res_name, execute, complete, job, &job->work) != napi_ok) goto fail;
    if (napi_queue_async_work(env, job->work) != napi_ok) {
        napi_delete_async_work(env, job->work);
        goto fail;
    }
    if (h) h->pending++;
    return promise;
fail:
    /* The promise (if made) is dropped unsettled; the caller throws instead. */
    if (job->release) job->release(job);
    if (job->self) napi_delete_reference(env, job->self);
    if (job->keep) napi_delete_reference(env, job->keep);
    free(job);
    return qzn_throw_napi(env, napi_generic_failure);
}
