// Entry point of the parley web client.

import { App } from './app.js';

new App().start();
