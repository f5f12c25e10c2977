// Caller-ID router: callers listed in config `known` (comma-separated
// extensions) are transferred to `known_target`, everyone else to
// `other_target`. An empty target ends the run without answering.
import { info, transfer } from 'plugboard:pbx/call@0.1.2';
import { get } from 'plugboard:pbx/config@0.1.2';
import { log } from 'plugboard:pbx/log@0.1.2';

export const handler = {
  handleCall() {
    const caller = info().caller.user;
    const known = (get('known') ?? '').split(',').map((k) => k.trim()).filter(Boolean);
    const [kind, key] = known.includes(caller) ? ['known', 'known_target'] : ['other', 'other_target'];
    const target = get(key) ?? '';
    if (!target) {
      log('info', `callerid-router: ${kind} caller ${caller}, no ${key} configured`);
      return;
    }
    log('info', `callerid-router: ${kind} caller ${caller} -> ${target}`);
    try {
      transfer(target);
    } catch (e) {
      const err = e.payload ?? e;
      if (err.tag === 'hung-up') return; // the caller left: a normal end
      throw `transfer to ${target}: ${err.tag ?? err}${err.val ? ` (${err.val})` : ''}`;
    }
  },
};
