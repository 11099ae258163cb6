// va.info(): version, devices, cpu threads/ISA, and the CUDA status (with the reason when unavailable).
import * as fs from 'fs';
import * as path from 'path';
import { native, NativeInfo, packageRoot } from './native';

export type Info = NativeInfo;

let cached: Info | undefined;

export function info(): Info {
  if (!cached) {
    const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
    cached = { ...native.info(), version: pkg.version };
  }
  return JSON.parse(JSON.stringify(cached)) as Info;
}
