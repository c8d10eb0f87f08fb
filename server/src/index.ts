export { buildApp, createServices, type Services, startBackground, stopServices } from './app.js';
export { type Config, ConfigError, loadConfig } from './config.js';
export { type RunningServer, startServer } from './main.js';
