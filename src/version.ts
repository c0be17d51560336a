/** The release version; a test keeps it equal to package.json's (the executable has no files to read). */
export const VERSION = '0.1.0';
