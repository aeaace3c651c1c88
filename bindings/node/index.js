'use strict';
// quartzdb - Node binding of libquartz. The native addon (src/, N-API in C)
// does the work; this file only loads it and defines QuartzError.
const native = require('./build/Release/quartz.node');

/** Error of a libquartz call: code is the status name ('QZ_EDIM'), errno its fixed number (-10). */
class QuartzError extends Error {
  constructor(message, code, errno) {
    super(message);
    this.name = 'QuartzError';
    this.code = code;
    this.errno = errno;
  }
}
native._setErrorClass(QuartzError);

module.exports = {
  Database: native.Database,
  QuartzError,
  codes: Object.freeze(native.codes),
  version: native.version,
  simd: native.simd,
  MAX_K: native.MAX_K,
  /** The id of a padded slot in a batch search result (counts[i] tells real results from padding). */
  PAD_ID: 0xffffffffffffffffn,
};
