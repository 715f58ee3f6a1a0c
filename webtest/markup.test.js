// node --test webtest/: the message formatting parser (static/js/markup.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { inline, parse, plainText } from '../static/js/markup.js';

test('plain text is one paragraph of text, line breaks kept', () => {
  assert.deepEqual(parse('hello\nworld'), [{ t: 'p', c: [{ t: 'text', v: 'hello\nworld' }] }]);
});

test('bold, italic and code', () => {
  assert.deepEqual(inline('*bold* _it_ `c *d*`'), [
    { t: 'b', c: [{ t: 'text', v: 'bold' }] }, { t: 'text', v: ' ' },
    { t: 'i', c: [{ t: 'text', v: 'it' }] }, { t: 'text', v: ' ' },
    { t: 'code', v: 'c *d*' },
  ]);
  assert.deepEqual(inline('**strong**'), [{ t: 'b', c: [{ t: 'text', v: 'strong' }] }]);
  assert.deepEqual(inline('*bold _and italic_*'), [{ t: 'b', c: [{ t: 'text', v: 'bold ' }, { t: 'i', c: [{ t: 'text', v: 'and italic' }] }] }]);
});

test('marks inside words, around blanks or across lines are text', () => {
  for (const s of ['snake_case_name', '2*3*4', '__init__', 'a * b * c', '* not bold*', '*not\nbold*', '`open', 'x_y_']) {
    assert.equal(plainText(parse(s)), s, s);
    assert.ok(parse(s).every((b) => b.t === 'p' && b.c.every((n) => n.t === 'text')), s);
  }
});

test('links: http(s) only, sentence punctuation left out', () => {
  assert.deepEqual(inline('see https://example.com/a_b.'), [
    { t: 'text', v: 'see ' }, { t: 'link', href: 'https://example.com/a_b', v: 'https://example.com/a_b' }, { t: 'text', v: '.' },
  ]);
  assert.deepEqual(inline('(https://example.com/x)'), [
    { t: 'text', v: '(' }, { t: 'link', href: 'https://example.com/x', v: 'https://example.com/x' }, { t: 'text', v: ')' },
  ]);
  for (const s of ['javascript:alert(1)', 'data:text/html,<b>x</b>', 'ftp://example.com', 'xhttps://example.com']) {
    assert.ok(!inline(s).some((n) => n.t === 'link'), s);
  }
});

test('mentions', () => {
  assert.deepEqual(inline('hi @bob.'), [{ t: 'text', v: 'hi ' }, { t: 'mention', v: 'bob' }, { t: 'text', v: '.' }]);
  assert.deepEqual(inline('mail a@b.com'), [{ t: 'text', v: 'mail a@b.com' }]);
});

test('fenced code blocks keep their text, markup included', () => {
  assert.deepEqual(parse('before\n```js\n<script>*x*</script>\n  two\n```\nafter'), [
    { t: 'p', c: [{ t: 'text', v: 'before' }] },
    { t: 'pre', v: '<script>*x*</script>\n  two' },
    { t: 'p', c: [{ t: 'text', v: 'after' }] },
  ]);
  // An unclosed fence is text.
  assert.equal(plainText(parse('```\nno end')), '```\nno end');
});

test('quotes: consecutive "> " lines, formatted inside', () => {
  assert.deepEqual(parse('> one *two*\n> three\nreply'), [
    { t: 'quote', c: [{ t: 'text', v: 'one ' }, { t: 'b', c: [{ t: 'text', v: 'two' }] }, { t: 'text', v: '\nthree' }] },
    { t: 'p', c: [{ t: 'text', v: 'reply' }] },
  ]);
});

test('markup is never interpreted: it stays text', () => {
  const s = '<img src=x onerror=alert(1)> <b>x</b>';
  assert.deepEqual(parse(s), [{ t: 'p', c: [{ t: 'text', v: s }] }]);
});
